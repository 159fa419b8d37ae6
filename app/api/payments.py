"""Payments, for admins: what each operator is owed and was paid, and the payouts feed."""

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
    """Per operator: EV owed (the fees of its succeeded jobs), EV sent in tickets, tickets
    sent and refused, winners, and what the chain redeemed. Amounts are wei, as strings."""
    session = ext.session()
    sender = ext.settings().gateway_address
    return {
        "sender": sender,
        "funding": ledger.funding_totals(session, sender),
        "operators": ledger.operator_summaries(session),
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
