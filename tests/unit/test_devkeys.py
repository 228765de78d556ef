"""The dev signing key, dev tokens and ``codeq auth dev-token``."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from typer.testing import CliRunner

from codeq import devkeys
from codeq.cli.main import app
from codeq.core.auth import WORKER_SCOPES
from codeq.core.config import Settings
from codeq.core.errors import ConfigError
from codeq.server.auth import build_authenticator


def verify(data_dir: Path, token: str, audience: str) -> dict[str, Any]:
    key = devkeys.load_or_create(data_dir)
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    return jwt.decode(token, key.private_key.public_key(), algorithms=["ES256"],
                      audience=audience, issuer="codeq-dev")


def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "dir"
    key = devkeys.load_or_create(data_dir)
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert key.path.parent == data_dir
    again = devkeys.load_or_create(data_dir)
    assert again.kid == key.kid and again.jwks == key.jwks
    assert [p.name for p in data_dir.iterdir()] == [devkeys.KEY_FILE]  # no temp files left
    jwk = key.jwks["keys"][0]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("EC", "P-256", "ES256", key.kid)
    assert "d" not in jwk  # the public half only


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from codeq.devkeys import load_or_create; "
            "print(load_or_create(Path(sys.argv[1])).kid)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    kids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert kids == {devkeys.load_or_create(tmp_path).kid}


def test_a_file_that_is_not_an_ec_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    (tmp_path / devkeys.KEY_FILE).write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ValueError, match="does not hold an EC P-256 private key"):
        devkeys.load_or_create(tmp_path)


def test_worker_tokens(tmp_path: Path) -> None:
    claims = verify(tmp_path, devkeys.mint_token(tmp_path, "worker", events=("A", "B"), ttl=120,
                                                 worker_group="gpu"), "codeq-worker")
    assert claims["sub"] == "dev-worker"
    assert claims["eventTypes"] == ["A", "B"]
    assert set(claims["scope"].split()) == set(WORKER_SCOPES)
    assert claims["workerGroup"] == "gpu"
    assert claims["exp"] - claims["iat"] == 120
    narrow = verify(tmp_path, devkeys.mint_token(tmp_path, "worker", sub="w1",
                                                 scopes=["codeq:claim"]), "codeq-worker")
    assert (narrow["sub"], narrow["scope"], narrow["eventTypes"]) == ("w1", "codeq:claim", ["*"])


def test_producer_and_admin_tokens(tmp_path: Path) -> None:
    producer = verify(tmp_path, devkeys.mint_token(tmp_path, "producer"), "codeq")
    admin = verify(tmp_path, devkeys.mint_token(tmp_path, "admin", sub="me"), "codeq")
    assert producer["sub"] == "dev-producer" and "role" not in producer
    assert "eventTypes" not in producer
    assert (admin["sub"], admin["role"]) == ("me", "ADMIN")


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="role must be producer, worker or admin"):
        devkeys.mint_token(tmp_path, "superuser")  # type: ignore[arg-type]


def test_cli_prints_only_the_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["auth", "dev-token", "--role", "worker", "--events",
                                      "RESIZE, THUMB", "--sub", "box-1", "--ttl", "60",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = verify(tmp_path, token, "codeq-worker")
    assert (claims["sub"], claims["eventTypes"]) == ("box-1", ["RESIZE", "THUMB"])
    assert claims["exp"] - claims["iat"] == 60


def test_cli_reads_codeq_data_dir_and_defaults_to_a_producer(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["auth", "dev-token"], env={"CODEQ_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert verify(tmp_path, result.stdout.strip(), "codeq")["sub"] == "dev-producer"
    admin = CliRunner().invoke(app, ["auth", "dev-token", "--role", "admin",
                                     "--data-dir", str(tmp_path)])
    assert verify(tmp_path, admin.stdout.strip(), "codeq")["role"] == "ADMIN"


def test_cli_refuses_bad_usage(tmp_path: Path) -> None:
    bad_role = CliRunner().invoke(app, ["auth", "dev-token", "--role", "root",
                                        "--data-dir", str(tmp_path)])
    assert bad_role.exit_code == 2
    no_events = CliRunner().invoke(app, ["auth", "dev-token", "--role", "worker", "--events",
                                         ",", "--data-dir", str(tmp_path)])
    assert no_events.exit_code == 2
    assert not (tmp_path / devkeys.KEY_FILE).exists()


def test_cli_reports_an_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["auth", "dev-token", "--data-dir", str(blocker / "sub")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "cannot use the dev key" in result.stderr


def test_a_dev_server_that_cannot_create_its_key_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as info:
        build_authenticator(Settings(data_dir=blocker))
    assert info.value.key == "dataDir"
    assert "cannot load or create the dev signing key" in info.value.message
