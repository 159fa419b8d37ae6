"""Administration from the shell: flask --app app keys | db | chain ..."""


def register(app) -> None:
    from app.cli.chain import chain
    from app.cli.database import database
    from app.cli.keys import keys

    for group in (keys, database, chain):
        app.cli.add_command(group)
