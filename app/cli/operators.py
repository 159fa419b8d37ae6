"""flask --app app operators create --name NAME --address 0x... | list | revoke ID"""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import extensions as ext, operators as registry
from app.store.db import transaction
from app.store.jobs import now
from app.store.tables import Operator

operators = AppGroup("operators", help="GPU operators: their Redis users and keys.")


def _keys_secret() -> bytes:
    secret = ext.settings().operator_keys_secret
    if not secret:
        raise click.UsageError("set OPERATOR_KEYS_SECRET (or OPERATOR_KEYS_SECRET_FILE)")
    return secret.encode()


@operators.command("create")
@click.option("--name", required=True)
@click.option("--address", required=True, help="the address its tickets pay (0x...)")
def create(name: str, address: str):
    """Register an operator; prints, once, the settings of its workers and redeemer."""
    settings = ext.settings()
    try:
        with transaction(ext.sessions()) as session:
            credentials = registry.create(session, ext.redis(), _keys_secret(),
                                          settings.operator_redis_url or settings.redis_url,
                                          name, address)
    except registry.OperatorError as exc:
        raise click.UsageError(str(exc))
    for line in credentials.env_lines():
        click.echo(line)


@operators.command("list")
def list_operators():
    with ext.new_session() as session:
        for op in session.scalars(select(Operator).order_by(Operator.id)):
            state = f"revoked {op.revoked_at:%Y-%m-%d}" if op.revoked_at else "active"
            click.echo(f"{op.id}\t{op.name}\t{op.address}\t{state}")


@operators.command("revoke")
@click.argument("operator_id", type=int)
def revoke(operator_id: int):
    """End an operator: its Redis user and connections go at once."""
    try:
        with transaction(ext.sessions()) as session:
            registry.revoke(session, ext.redis(), operator_id, now())
    except registry.OperatorError as exc:
        raise click.UsageError(str(exc))
    click.echo(f"revoked operator {operator_id}")
