"""The device-facing HTTP endpoint (its own process and port, apart from the staff-facing app): the
routes of OpenPAYGO Metrics (``openpaygo/metrics`` Specifications.md, "API Routes").

- ``POST /device_data`` and ``POST /dd`` (one handler): a device's request, JSON or CBOR; 201 with
  the Server Response Object in the request's form and encoding (``ingest.openpaygo_metrics``).
  Its proof is in the payload (``auth``), or, for registration and testing, an HS256 JWT naming the
  unit (``Authorization: Bearer <jwt>``, claims ``sn``, ``scope`` "device_data", ``exp``).
- ``GET /device_data`` (and ``/dd``) ``?serial_number=&from_datetime=&to_datetime=``: a unit's
  readings as a simple Device Request Object, for an integration's API token (staff ``pgt_…``
  tokens of the administrator, call-centre, finance or viewer role).
- ``POST /data_format``: registers a Data Format Object (``?product_id=`` ties it to a product); an
  administrator's API token, or a JWT with scope "data_format"; 201 ``{"id": N}``. Devices do not
  register (their ``auth`` proves a unit, not a manufacturer).

Staff tokens only, no sessions: this port serves devices, not browsers (no cookie, no CSRF).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from psycopg import errors
from psycopg_pool import ConnectionPool, PoolTimeout

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.config import Settings, derive_key
from backoffice.deps import DbConn, database_answers, pool_lifespan
from backoffice.security import RefuseNul, client_address
from backoffice.staff import service as staff_service
from ingest import openpaygo_metrics, repository
from protocol import ProtocolError
from protocol import openpaygo_metrics as om
from protocol.openpaygo_metrics import MAX_REQUEST_BYTES

READERS = frozenset({"admin", "call_centre", "finance", "viewer"})
REGISTRARS = frozenset({"admin"})
JWT_ALGORITHM = "HS256"


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than one byte past MAX_REQUEST_BYTES: a larger body is refused
    (413, with its start as the dead letter) without being held in memory whole."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            break
    return bytes(body[: MAX_REQUEST_BYTES + 1])


CappedBody = Annotated[bytes, Depends(_capped_body)]


class Refusal(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def jwt_secret(settings: Settings) -> str:
    return settings.metrics_jwt_secret or derive_key(settings.secret_key, "metrics-jwt").hex()


def issue_jwt(settings: Settings, subject: str, scope: str, serial: str | None = None, hours: int = 1) -> str:
    """A JWT for registration ("data_format") or testing a unit ("device_data", naming its serial)."""
    claims: dict[str, Any] = {"sub": subject, "scope": scope, "exp": clock.utc_now() + timedelta(hours=hours)}
    if serial is not None:
        claims["sn"] = serial
    return jwt.encode(claims, jwt_secret(settings), algorithm=JWT_ALGORITHM)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Refusal(401, "use 'Authorization: Bearer <API token or JWT>'")
    return value.strip()


def _jwt_claims(settings: Settings, token: str, scope: str) -> dict[str, Any]:
    """The claims of a valid JWT of ``scope`` that expires within metrics_jwt_max_hours; Refusal otherwise."""
    try:
        # Expiry is checked below on the platform's clock, not by PyJWT on the machine's.
        claims: dict[str, Any] = jwt.decode(token, jwt_secret(settings), algorithms=[JWT_ALGORITHM],
                                            options={"require": ["exp", "sub", "scope"], "verify_exp": False,
                                                     "verify_iat": False, "verify_nbf": False})  # fmt: skip
        expires = float(claims["exp"])
    except (jwt.InvalidTokenError, TypeError, ValueError) as err:
        raise Refusal(401, f"invalid JWT: {err}") from None
    if expires <= clock.utc_now().timestamp():
        raise Refusal(401, "invalid JWT: Signature has expired")
    if claims.get("scope") != scope:
        raise Refusal(403, f"this JWT is not for {scope}")
    if expires > (clock.utc_now() + timedelta(hours=settings.metrics_jwt_max_hours)).timestamp():
        raise Refusal(401, f"a JWT must expire within {settings.metrics_jwt_max_hours} hours")
    return claims


def _staff_token(request: Request, conn: Any, settings: Settings, token: str, roles: frozenset[str]) -> Actor:
    """Who an API token holding one of ``roles`` is (for the audit trail); Refusal otherwise."""
    with conn.transaction():
        staff = staff_service.token_staff(conn, token, None, client_address(request, settings) or None)
    if staff is None:
        raise Refusal(401, "unknown or revoked API token")
    if not staff.holds(roles):
        raise Refusal(403, f"this needs an API token of the {' or '.join(sorted(roles))} role")
    return staff.actor


def create_device_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="PAYGO device API",
        lifespan=pool_lifespan(settings, "device-api"),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.add_middleware(RefuseNul)  # a NUL in the address: 400 before any handler

    @app.exception_handler(PoolTimeout)
    def _busy(request: Request, err: PoolTimeout) -> Response:
        # Overloaded: every database connection busy for longer than the pool waits. The device
        # keeps its data (store-and-forward) and sends them again.
        return JSONResponse({"error": "busy, send again"}, 503, headers={"Retry-After": "30"})

    @app.exception_handler(Refusal)
    def _refused(request: Request, err: Refusal) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse({"error": err.detail}, err.status, headers=headers)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready(request: Request) -> Response:
        """Readiness: the database answers too (deploy/k8s probes)."""
        if database_answers(request):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "database unavailable"}, 503)

    def send_data(request: Request, raw: CappedBody) -> Response:
        content_type = request.headers.get("content-type")
        token = _bearer(request)
        serial = None
        if token is not None:
            serial = str(_jwt_claims(settings, token, "device_data").get("sn") or "") or None
        # Checked before a connection of the pool is taken: a hostile body costs no connection time.
        parsed = openpaygo_metrics.read(raw, content_type, serial)
        pool: ConnectionPool = request.app.state.pool
        try:
            # The connection taken and given back in this one worker thread (not a yield dependency,
            # whose release needs another thread of the pool: under a burst the threads waiting for a
            # connection would hold up those that give one back).
            with pool.connection() as conn, conn.transaction():  # committed before the answer
                answer = openpaygo_metrics.handle(conn, raw, settings.secret_key, content_type=content_type,
                                                  jwt_serial=serial, parsed=parsed)  # fmt: skip
        except (errors.DeadlockDetected, errors.SerializationFailure, errors.LockNotAvailable):
            # A payment for the same unit held its rows (a time-mode SET_TIME locks the contract too):
            # nothing was stored; the device keeps its data and sends them again.
            return JSONResponse({"error": "busy, send again"}, 503, headers={"Retry-After": "5"})
        if answer.status >= 400:
            return JSONResponse(answer.body, status_code=answer.status)
        return Response(om.encode(answer.body, answer.content_type), answer.status, media_type=answer.content_type)

    for path in ("/device_data", "/dd"):
        app.add_api_route(path, send_data, methods=["POST"])

    def get_data(
        request: Request,
        conn: DbConn,
        serial_number: Annotated[str, Query(min_length=1, max_length=64)],
        from_datetime: datetime,
        to_datetime: datetime,
    ) -> dict[str, Any]:
        token = _bearer(request)
        if token is None:
            raise Refusal(401, "an integration's API token is needed (Authorization: Bearer pgt_...)")
        _staff_token(request, conn, settings, token, READERS)
        if from_datetime.tzinfo is None or to_datetime.tzinfo is None:
            raise Refusal(400, "from_datetime and to_datetime need a time zone (ISO 8601, e.g. ...Z)")
        if "\x00" in serial_number:
            raise Refusal(404, "unknown serial")
        unit_id = repository.unit_id_by_serial(conn, serial_number)
        if unit_id is None:
            raise Refusal(404, f"unknown serial {serial_number!r}")
        try:
            steps = repository.device_data(conn, unit_id, from_datetime, to_datetime, settings.metrics_max_readings)
        except OverflowError:
            raise Refusal(400, "dates out of range") from None
        return {"serial_number": serial_number, "historical_data": steps}

    for path in ("/device_data", "/dd"):
        app.add_api_route(path, get_data, methods=["GET"])

    @app.post("/data_format", status_code=201)
    def data_format(request: Request, raw: CappedBody, conn: DbConn, product_id: int | None = None) -> dict[str, int]:
        token = _bearer(request)
        if token is None:
            raise Refusal(401, "registering a data format needs an administrator's API token or a JWT")
        if token.startswith(staff_service.TOKEN_PREFIX):
            who = _staff_token(request, conn, settings, token, REGISTRARS)
        else:
            subject = "jwt:" + str(_jwt_claims(settings, token, "data_format")["sub"])[:64]
            who = Actor(subject, None, None, client_address(request, settings) or None)
        try:
            fmt = om.check_format(om.decode(raw, request.headers.get("content-type")), None)
        except ProtocolError as err:
            raise Refusal(400, f"not a Data Format Object: {err}") from None
        with conn.transaction():
            if product_id is not None and not (0 < product_id < 2**63 and repository.product_exists(conn, product_id)):
                raise Refusal(404, f"unknown product {product_id}")
            new_id = repository.insert_data_format(conn, fmt.as_dict(), product_id, who.name)
            after = fmt.as_dict() | {"product_id": product_id}
            audit.record(conn, who, "metrics.data_format.register", "metrics_data_format", new_id, None, after)
        return {"id": new_id}

    return app
