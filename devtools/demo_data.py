"""A small demo company (Kenya, KES): three products, customers with installed units and contracts."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import psycopg

from backoffice.audit.schemas import SYSTEM
from backoffice.contracts import service as contracts
from backoffice.customers import service as customers
from backoffice.customers.schemas import Language, NewCustomer
from backoffice.registry import repository, service
from backoffice.registry.schemas import NewContract
from firmware_sim.unit import UnitSpec

PRODUCTS = [
    {
        "code": "SHS-50",
        "name": "Home 50 (lights, radio, phone charging)",
        "business_model": "asset_finance",
        "currency": "KES",
        "hardware_cost": 1_450_000,
        "transport_cost": 80_000,
        "import_tax": 120_000,
        "insurance_cost": 20_000,
        "installation_cost": 50_000,
        "lighting_global_certified": True,
        "deposit_amount": 200_000,
        "instalment_amount": 30_000,
        "instalment_count": 52,
        "instalment_period_days": 7,
        "panel_wp": 50,
        "battery_ah": 20,
        "battery_chemistry": "lifepo4",
    },
    {
        "code": "SHS-100-TV",
        "name": "Home 100 with 24-inch TV",
        "business_model": "asset_finance",
        "currency": "KES",
        "hardware_cost": 3_900_000,
        "transport_cost": 120_000,
        "import_tax": 300_000,
        "insurance_cost": 40_000,
        "installation_cost": 80_000,
        "lighting_global_certified": True,
        "deposit_amount": 500_000,
        "instalment_amount": 55_000,
        "instalment_count": 104,
        "instalment_period_days": 7,
        "panel_wp": 100,
        "battery_ah": 60,
        "battery_chemistry": "lifepo4",
    },
    {
        "code": "LAMP-10",
        "name": "Lantern 10 (flexible PAYG)",
        "business_model": "flexible",
        "currency": "KES",
        "hardware_cost": 450_000,
        "transport_cost": 20_000,
        "import_tax": 40_000,
        "lighting_global_certified": False,
        "deposit_amount": 50_000,
        "price_per_day": 3_500,
        "price_to_own": 900_000,
        "contract_days": 365,
        "deposit_days": 7,
        "panel_wp": 10,
        "battery_ah": 6,
        "battery_chemistry": "lead_acid",
    },
]

FIRST = [
    "Amina",
    "Baraka",
    "Wanjiru",
    "Otieno",
    "Achieng",
    "Kiprop",
    "Nafula",
    "Mutua",
    "Zawadi",
    "Omondi",
    "Chebet",
    "Njeri",
    "Kamau",
    "Atieno",
    "Wekesa",
    "Halima",
    "Juma",
    "Akinyi",
    "Mwangi",
    "Rehema",
]
LAST = [
    "Odhiambo",
    "Wambua",
    "Kariuki",
    "Cheruiyot",
    "Mohamed",
    "Nyambura",
    "Ouma",
    "Kilonzo",
    "Wafula",
    "Mutiso",
    "Koech",
    "Auma",
    "Githinji",
    "Barasa",
    "Mwende",
]
VILLAGES = [
    ("Kakuma", "Turkana", 3.72, 34.86),
    ("Marsabit", "Marsabit", 2.33, 37.99),
    ("Homa Bay", "Homa Bay", -0.53, 34.46),
    ("Kitui", "Kitui", -1.37, 38.01),
    ("Garissa", "Garissa", -0.45, 39.65),
    ("Bungoma", "Bungoma", 0.56, 34.56),
    ("Voi", "Taita-Taveta", -3.39, 38.56),
]


def seed(conn: psycopg.Connection, secret_key: str, customers: int = 50, rng_seed: int = 7) -> int:
    """Seed the demo company in the caller's transaction unless products exist; returns units created."""
    if conn.execute("select 1 from products limit 1").fetchone():
        return 0
    for p in PRODUCTS:
        repository.insert_product(conn, **p)
    now = datetime.now(UTC)
    return add_customers(conn, secret_key, customers, random.Random(rng_seed), now - timedelta(days=400),
                         now - timedelta(days=45))  # fmt: skip


def add_customers(
    conn: psycopg.Connection, secret_key: str, count: int, rng: random.Random, installed_from: datetime,
    installed_to: datetime,
) -> int:  # fmt: skip
    """More customers of the demo company, each with a unit installed between the two times and a
    signed contract whose deposit is paid (in the caller's transaction); returns how many."""
    products = {code: pid for pid, code in conn.execute("select id, code from products")}
    product_ids = [products[p["code"]] for p in PRODUCTS if p["code"] in products]
    if not product_ids:
        raise ValueError("the demo products are missing: seed the demo company first ('paygo db seed-demo')")
    first = int(conn.execute("select count(*) from units where serial like 'SHS%'").fetchone()[0])  # type: ignore[index]
    span = (installed_to - installed_from).total_seconds()
    for i in range(first + 1, first + count + 1):
        village, district, lat, lon = rng.choice(VILLAGES)
        lat += rng.uniform(-0.15, 0.15)
        lon += rng.uniform(-0.15, 0.15)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        phone = f"2547{rng.randrange(10_000_000, 99_999_999)}"
        customer_id = customers.create_customer(conn, _customer(i, name, phone, village, district, lat, lon), "KE",
                                                SYSTEM).id  # fmt: skip
        product_id = rng.choices(product_ids, weights=[6, 2, 3][: len(product_ids)])[0]
        installed = installed_from + timedelta(seconds=rng.uniform(0, span))
        unit_id = service.register_unit(conn, secret_key, f"SHS{i:06d}", product_id, lat, lon, installed_at=installed)
        signed: date = installed.date()
        new = NewContract(customer_id, unit_id, product_id, signed)
        contracts.sign_contract(conn, new, deposit_paid_on=signed, secret_key=secret_key)
    return count


def _customer(i: int, name: str, phone: str, village: str, district: str, lat: float, lon: float) -> NewCustomer:
    """A demo customer's details; what the main generator does not draw comes from one seeded by the
    phone number, so the units, products and contracts stay those of earlier versions of the demo."""
    more = random.Random(phone)
    numbers = [f"+{phone}"]
    if more.random() < 0.3:  # a second number: a spouse's, or a second SIM
        numbers.append(f"07{more.randrange(10_000_000, 99_999_999)}")
    national_id = f"{21_000_000 + i}" if more.random() < 0.8 else None  # unique: the unit's number
    languages: list[Language] = ["sw", "en", "km"]
    language = more.choices(languages, weights=[6, 4, 0.2])[0]
    return NewCustomer(name=name, phones=numbers, national_id=national_id, village=village, district=district,
                       latitude=round(lat, 5), longitude=round(lon, 5), language=language)  # fmt: skip


def synthetic_specs(n: int, seed: int = 0) -> list[UnitSpec]:
    """Units that exist only in the simulator (load tests): the demo company's kits and villages."""
    rng = random.Random(seed)
    kits = [(int(str(p["panel_wp"])), float(str(p["battery_ah"])), str(p["battery_chemistry"]))
            for p in PRODUCTS]  # fmt: skip
    out = []
    for i in range(1, n + 1):
        _, _, lat, lon = rng.choice(VILLAGES)
        wp, ah, chem = rng.choices(kits, weights=[6, 2, 3])[0]
        out.append(UnitSpec(f"SIM{i:06d}", lat + rng.uniform(-0.15, 0.15), lon + rng.uniform(-0.15, 0.15),
                            wp, ah, chem))  # fmt: skip
    return out
