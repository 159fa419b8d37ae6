"""Administration from the shell: flask --app app keys | db | chain ..."""


def register(app) -> None:
    from app.cli.chain import chain
    from app.cli.database import database
    from app.cli.keys import keys
    from app.cli.operators import operators

    for group in (keys, database, chain, operators):
        app.cli.add_command(group)
