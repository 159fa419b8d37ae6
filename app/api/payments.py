"""Payments, for admins: what each operator is owed and was paid, and the payouts feed."""

from datetime import timedelta
from decimal import Decimal

from flask import Blueprint, request

from app import extensions as ext
from app.api.auth import authenticate
from app.api.errors import ApiError
from app.store import ledger

bp = Blueprint("payments", __name__, url_prefix="/admin")
MAX_PAGE = 500


@bp.before_request
def admins_only():
    authenticate(role="admin")


@bp.get("/payments")
def payments():
    """Per operator: its jobs owed and paid, EV owed (the fees of its succeeded jobs), what
    is still owed and what has been owed for longer than PAYMENTS_UNPAID_SECONDS
    (`owed_unpaid`), EV sent in live tickets, tickets sent, refused and voided, winners,
    what the chain redeemed, and the gateway's refusals of its params by reason. Amounts are
    wei, as strings; `owed_unpaid` is also summed over every operator."""
    session = ext.session()
    settings = ext.settings()
    sender = settings.gateway_address
    operators = ledger.operator_summaries(session, timedelta(seconds=settings.payments_unpaid_seconds))
    return {
        "sender": sender,
        "funding": ledger.funding_totals(session, sender),
        "owed_unpaid": {
            "jobs": sum(o["owed_unpaid"]["jobs"] for o in operators),
            "wei": str(sum(Decimal(o["owed_unpaid"]["wei"]) for o in operators)),
            "after_seconds": settings.payments_unpaid_seconds,
        },
        "operators": operators,
    }


@bp.get("/payouts")
def payouts():
    """Redemptions on chain, newest first; `before` (an id) pages back."""
    limit = _int_arg("limit", 50)
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}.")
    items = ledger.payouts(ext.session(), limit, _int_arg("before", None))
    return {"payouts": items, "next_before": items[-1]["id"] if len(items) == limit else None}


def _int_arg(name: str, default):
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer.")
