"""A greedy operator, end to end with real processes: its worker and its redeemer price
tickets at 1,000 ether of EV (OPERATOR_TICKET_EV) for jobs worth a fraction of one. Every
params it sends, with the job and when asked again, are refused by the settler's bounds,
logged and counted by reason in /admin/payments; no ticket is signed; its jobs stay
succeeded and owed, and honest params would still pay them."""

from sqlalchemy import select

from app.store import ledger
from devstack.stack import wait_for
from support import submit_echo, ticket_rows, wait_status

OPERATOR_ENV = {"OPERATOR_TICKET_EV": str(1000 * 10**18)}
GREEDY = {"face_value_cap", "face_value_over_funds", "ev_too_high", "ev_over_fee"}


def test_a_greedy_operators_params_are_refused_and_its_jobs_stay_owed(
        stack, http, pay_gateway, auth, admin_auth, sessions, operator):
    job_ids = [submit_echo(http, pay_gateway, auth) for _ in range(2)]
    for job_id in job_ids:
        wait_status(http, pay_gateway, auth, job_id, "succeeded", timeout=60)

    def refused() -> dict:
        summary = http.get(f"{pay_gateway}/admin/payments", headers=admin_auth).json()
        [mine] = [o for o in summary["operators"] if o["recipient"] == operator.address]
        return mine["refusals"] if sum(mine["refusals"].values()) >= len(job_ids) else {}

    # The worker's params with each job, then the redeemer's fresh ones when asked.
    refusals = wait_for(refused, timeout=60, what="the greedy params refused")
    assert set(refusals) <= GREEDY, refusals

    def debts_refused() -> list:
        """Each job's debt, once each was refused (the count above may be one job's two
        refusals: with the job, and when asked again)."""
        with sessions() as session:
            debts = session.scalars(
                select(ledger.Debt).where(ledger.Debt.job_id.in_(job_ids))).all()
        return debts if len(debts) == len(job_ids) and all(d.refusal for d in debts) else []

    debts = wait_for(debts_refused, timeout=60, what="each job's debt refused")
    assert ticket_rows(sessions, job_ids) == []
    assert {d.status for d in debts} == {ledger.OWED}
    assert {d.refusal for d in debts} <= GREEDY
    log = stack.log(operator.settler)
    assert all(f"job {job_id}: ticket params from {operator.address} refused" in log
               for job_id in job_ids)
