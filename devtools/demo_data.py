"""A small demo company (Kenya, KES): three products, customers with installed units and contracts."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import psycopg

from backoffice import clock
from backoffice.agents import repository as agents_repository
from backoffice.agents import service as agents
from backoffice.agents.schemas import NewAgent
from backoffice.audit.schemas import SYSTEM, Actor
from backoffice.contracts import service as contracts
from backoffice.customers import service as customers
from backoffice.customers.schemas import Language, NewCustomer
from backoffice.inventory import receipt
from backoffice.inventory import repository as inventory_repository
from backoffice.inventory import service as inventory
from backoffice.registry import repository, service
from backoffice.registry.schemas import NewContract
from backoffice.staff import repository as staff_repository
from backoffice.tickets import service as tickets
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
# One company, one region: towns around Lake Victoria's Kenyan shore and the west, an hour or two apart.
VILLAGES = [
    ("Homa Bay", "Homa Bay", -0.53, 34.46),
    ("Kendu Bay", "Homa Bay", -0.36, 34.64),
    ("Mbita", "Homa Bay", -0.43, 34.21),
    ("Rongo", "Migori", -0.76, 34.60),
    ("Migori", "Migori", -1.06, 34.47),
    ("Kakamega", "Kakamega", 0.28, 34.75),
    ("Bungoma", "Bungoma", 0.56, 34.56),
]


def seed(conn: psycopg.Connection, secret_key: str, customers: int = 50, rng_seed: int = 7) -> int:
    """Seed the demo company in the caller's transaction unless products exist; returns units created."""
    if conn.execute("select 1 from products limit 1").fetchone():
        return 0
    for p in PRODUCTS:
        repository.insert_product(conn, **p)
    now = clock.utc_now()
    created = add_customers(conn, secret_key, customers, random.Random(rng_seed), now - timedelta(days=400),
                            now - timedelta(days=45))  # fmt: skip
    seed_field_operations(conn, secret_key)
    return created


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
        signed: date = clock.business_day(installed)
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
    languages: list[Language] = ["sw", "en"]  # a Kenyan company's customers: Swahili or English
    language = more.choices(languages, weights=[6, 4])[0]
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


# Field operations (issue 15): agents by area, the main warehouse's stock, parts, tickets.
# Each agent covers neighbouring towns (at most about 40 km apart: DEMO_AGENT_REACH_KM).
DEMO_AGENTS = [
    ("KE-A1", "Grace Akinyi", ("Homa Bay", "Kendu Bay", "Mbita")),
    ("KE-A2", "Peter Kiplagat", ("Rongo", "Migori")),
    ("KE-A3", "Esther Wanjiku", ("Kakamega", "Bungoma")),
]
DEMO_AGENT_REACH_KM = 50
DEMO_PARTS = [
    ("BAT-12V", "Battery 12 V 7 Ah LiFePO4", 40, 4),
    ("PANEL-50W", "Panel 50 Wp", 10, 1),
    ("LAMP-LED", "LED lamp 2 W", 60, 6),
]
DEMO_FIELD_AGENT = "demo-field-agent"  # the demo's field-agent login is agent KE-A1 (link_demo_agent)


def seed_field_operations(conn: psycopg.Connection, secret_key: str) -> None:
    """Three agents (no logins yet) serving the demo's villages, each credited with the contracts of their
    villages; spare parts at the warehouse and with each agent; ten units received at the warehouse, two
    of them with agent KE-A1; a few tickets of each kind. In the caller's transaction."""
    actor = Actor("demo-seed")
    warehouse = inventory_repository.locations(conn)[0].id
    made = [
        agents.create_agent(
            conn, actor, NewAgent(code=code, name=name, areas=list(villages), phone=f"2547{11_000_000 + i:08d}")
        )
        for i, (code, name, villages) in enumerate(DEMO_AGENTS)
    ]
    for sku, name, at_warehouse, each in DEMO_PARTS:
        inventory.add_parts(conn, actor, sku, at_warehouse, warehouse, name=name)
        for a in made:
            assert a.location_id is not None
            inventory.add_parts(conn, actor, sku, each, a.location_id, from_location_id=warehouse)
    serials = [f"STK{i:06d}" for i in range(1, 11)]
    products = {str(code) for (code,) in conn.execute("select code from products")}
    product = "SHS-50" if "SHS-50" in products else sorted(products)[0]
    body = "serial,product\n" + "".join(f"{s},{product}\n" for s in serials)
    receipt.receive(conn, actor, secret_key, warehouse, body.encode(), "demo-shipment.csv")
    for serial in serials[:2]:
        unit_id = inventory_repository.unit_id_of(conn, serial)
        assert unit_id is not None
        inventory.move_unit(conn, actor, unit_id, "assign_to_agent", agent_id=made[0].id)
    by_village = {v: a for a, (_, _, villages) in zip(made, DEMO_AGENTS, strict=True) for v in villages}
    sold = conn.execute(
        """select c.account_number, cu.village, c.unit_id from contracts c join customers cu on cu.id = c.customer_id
            order by c.id"""
    ).fetchall()
    for account, village, _ in sold:
        if village in by_village:
            agents.record_sale(conn, actor, by_village[village].id, account)
    # The two units with KE-A1 are for new sales: installing them is the agent's job. The other tickets
    # come with the story (open_story_tickets, after the history says who is behind and what is wrong).
    for serial in serials[:2]:
        unit_id = inventory_repository.unit_id_of(conn, serial)
        assert unit_id is not None
        tickets.open_ticket(conn, actor, unit_id, "installation", "call_centre", "new sale: install at the customer's",
                            agent_id=made[0].id)  # fmt: skip


# What the story's tickets are for: a customer far behind is visited to take the unit back; a household
# whose panel is covered, or whose use is fading, is taught again. Battery swaps and repairs come from
# the fleet-health alerts (health.run_day), as they would in life.
REPOSSESS_AFTER_DAYS = 60
EDUCATION_SCENARIOS = ("panel_covered", "usage_dropping")


def open_story_tickets(conn: psycopg.Connection, truth: dict[str, str], today: date) -> int:
    """The tickets the history calls for (in the caller's transaction), each assigned to the agent who
    covers the customer's town: repossession for active contracts whose credit ran out more than
    REPOSSESS_AFTER_DAYS days before ``today``, customer education for units whose scenario in ``truth``
    (serial -> scenario) is in EDUCATION_SCENARIOS. Returns how many were opened."""
    actor = Actor("demo-seed")
    agents_by_town = {v: a.id for a in agents_repository.agents(conn) for v in a.areas}
    rows = conn.execute(
        # A paid-off contract's credit never ends ('infinity': no Python datetime).
        """select u.id, u.serial, cu.village, c.state,
                  case when isfinite(c.credit_end) then c.credit_end end as credit_end
             from contracts c join units u on u.id = c.unit_id join customers cu on cu.id = c.customer_id
            where u.state = 'installed' order by u.serial"""
    ).fetchall()
    cutoff = clock.start_of_day(today - timedelta(days=REPOSSESS_AFTER_DAYS))
    opened = 0
    for unit_id, serial, village, state, credit_end in rows:
        agent = agents_by_town.get(village)
        if state == "active" and credit_end is not None and credit_end < cutoff:
            note = f"no credit since {clock.business_day(credit_end):%d %b %Y}: collect the unit"
            tickets.open_ticket(conn, actor, unit_id, "repossession", "call_centre", note, agent_id=agent)
            opened += 1
        elif truth.get(serial) in EDUCATION_SCENARIOS:
            note = "low light: " + ("show how to keep the panel clean" if truth[serial] == "panel_covered"
                                    else "ask how the kit serves the household")  # fmt: skip
            tickets.open_ticket(conn, actor, unit_id, "customer_education", "call_centre", note, agent_id=agent)
            opened += 1
    return opened


def link_demo_agent(conn: psycopg.Connection, username: str = DEMO_FIELD_AGENT) -> bool:
    """The demo's field-agent login becomes agent KE-A1 (after ``paygo demo`` has created the logins)."""
    login = staff_repository.user_by_name(conn, username)
    return login is not None and agents_repository.link_user(conn, DEMO_AGENTS[0][0], login.id)
