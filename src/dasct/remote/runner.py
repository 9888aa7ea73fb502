"""The controller's half of a remote environment: one request to one target host.

`call` connects (dasct.remote.ssh), uploads the runtime once per version
(dasct.remote.bundle), sends the request stream (dasct.remote.wire: the action, the
environment as the target sees it, the triggers to stage, the gate's state) to
`dasct _target` on the host, prints the host's lines as they come, and replaces the local
mirror of the host's state with the copy it answers with. The engine, its lock, journal,
archive and audit log all live and run on the host (dasct.remote.targetside).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dasct import redact
from dasct.config import Config, EnvironmentConfig, gate_of
from dasct.migrate import inventory
from dasct.migrate import trigger as trig
from dasct.migrate import trigger_read as trigr
from dasct.migrate.environment import Environment
from dasct.remote import bundle, ssh, wire
from dasct.remote.hosts import Remote, RemoteError, Target, mirror_dir
from dasct.remote.targetside import TEST_PREFIX

Write = Callable[[str], None]
# Keys that say how to reach a target: the controller's business, never the target's.
_CONTROLLER_KEYS = {"target", "hosts", "hosts_file", "known_hosts", "ssh_key_env",
                    "remote_python", "remote_base", "canary", "batch_size", "on_failure",
                    "connect_timeout", "root"}
_FORWARDED = ("migrate", "security", "audit", "promotion")


@dataclass
class HostResult:
    """What one request to one target did."""

    target: Target
    exit_code: int = 1
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # unreachable, refused, connection lost: the host is held

    @property
    def reached(self) -> bool:
        return self.error is None


def base_of(remote: Remote, environment_name: str, target: Target) -> str:
    """dasct's directory on target ({host}, {port}, {env}, {root} are replaced)."""
    return (remote.base_for(environment_name).replace("{host}", target.host)
            .replace("{root}", str(target.root))
            .replace("{port}", str(target.port)).replace("{env}", environment_name))


def host_view(env: Environment, target: Target) -> Environment:
    """env as seen through target's mirror (for status, where, inventory)."""
    assert env.home is not None
    return dataclasses.replace(env, root=Path(str(target.root)),
                               state_dir=mirror_dir(env.home, env.name, target))


# --- the environment as the target sees it -----------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _toml_table(name: str, values: dict[str, Any]) -> list[str]:
    lines, tables = [f"[{name}]"], []
    for key, value in values.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            tables += _toml_table(f"{name}.{key}", dataclasses.asdict(value))
        elif isinstance(value, dict):
            tables += _toml_table(f"{name}.{key}", value)
        elif (isinstance(value, tuple | list) and value
              and (isinstance(value[0], dict) or dataclasses.is_dataclass(value[0]))):
            for item in value:
                doc = item if isinstance(item, dict) else dataclasses.asdict(item)
                tables += [f"[[{name}.{key}]]"] + [f"{k} = {_toml_value(v)}"
                                                    for k, v in doc.items()]
        else:
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    return lines + tables


def target_config(cfg: Config, name: str, target: Target) -> bytes:
    """The .dasct.toml of the environment on target: local paths under dasct's directory."""
    lines: list[str] = []
    for section in _FORWARDED:
        values = dataclasses.asdict(getattr(cfg, section))
        if section == "audit":
            values["checkpoint_copy"] = ""  # a path of the controller
        lines += _toml_table(section, values)
    env: EnvironmentConfig = cfg.environments[name]
    values = {k: v for k, v in dataclasses.asdict(env).items() if k not in _CONTROLLER_KEYS}
    values.update(root=str(target.root), state_dir=env.state_dir or "state",
                  staging=env.staging or "staging", database=env.database or "sqlite:///db.sqlite")
    gate = gate_of(cfg, name)
    values["promote_from"] = gate or "none"
    lines += _toml_table(f"environments.{json.dumps(name)}", values)
    if gate is not None:
        folder = f"gates/{gate}"
        lines += _toml_table(f"environments.{json.dumps(gate)}", {
            "root": f"{folder}/root", "state_dir": f"{folder}/state",
            "staging": f"{folder}/staging", "promote_from": "none"})
    return ("\n".join(lines) + "\n").encode()


def _environ(cfg: Config) -> dict[str, str]:
    """The secrets the engine on the target needs, and the test hooks, by name."""
    names = [cfg.migrate.signing_key_env, *cfg.migrate.verify_key_envs,
             cfg.audit.checkpoint_key_env]
    found = {n: os.environ[n] for n in names if os.environ.get(n)}
    found.update({k: v for k, v in os.environ.items() if k.startswith(TEST_PREFIX)})
    return found


# --- the request --------------------------------------------------------------------------

def _stage(out: wire.Writer, env: Environment, mirror: Path, write: Write) -> list[str]:
    """Add the triggers target has not settled, with their payloads; return their ids."""
    sent, objects = [], set()
    for path in trig.pending(env.staging, env.name):
        if inventory.outcome(mirror, path.stem) is not None:
            continue  # the target settled it (its own record says so)
        try:
            t = trigr.load(path, environments=[env.name], key=env.key,
                           previous_keys=env.previous_keys,
                           require_signature=env.require_signature)
        except trig.TriggerError:
            t = None  # sent as it is: the target refuses and records it, as locally
        out.add_file(f"{wire.STAGING}/triggers/{env.name}/{path.name}", path)
        for digest in t.payloads() if t is not None else ():
            obj = env.staging / "objects" / digest[:2] / digest
            if digest not in objects and obj.is_file():
                objects.add(digest)
                out.add_file(f"{wire.STAGING}/objects/{digest[:2]}/{digest}", obj)
        sent.append(path.stem)
    if sent:
        write(f"  staging on the target: {', '.join(sent)}")
    return sent


def _request(cfg: Config, env: Environment, target: Target, action: str,
             args: dict[str, Any], write: Write) -> tempfile.SpooledTemporaryFile[bytes]:
    # The caller reads and closes it; big payloads spill to disk past 8 MiB.
    buf: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(8 << 20)  # noqa: SIM115
    out = wire.Writer(buf)
    gate = env.gate
    out.add_json(wire.REQUEST, {"action": action, "args": args, "environment": env.name,
                                "environ": _environ(cfg),
                                "gate": gate.name if gate else None})
    out.add_bytes(wire.CONFIG, target_config(cfg, env.name, target))
    if action == "run":
        assert env.home is not None
        _stage(out, env, mirror_dir(env.home, env.name, target), write)
    if gate is not None:
        out.add_tree(wire.GATE, wire.state_files(gate.state_dir))
    out.close()
    buf.seek(0)
    return buf


def _mirror(env: Environment, target: Target, stdout: bytes) -> dict[str, Any]:
    import io

    assert env.home is not None
    result: dict[str, Any] | None = None
    state: dict[str, bytes] = {}
    for name, f in wire.read(io.BytesIO(stdout), prefixes=(wire.STATE,),
                             singles=(wire.RESULT,)):
        if name == wire.RESULT:
            result = json.loads(f.read())
        else:
            state[name[len(wire.STATE) + 1:]] = f.read()
    if result is None:
        raise RemoteError(f"{target.label}: the answer has no result")
    wire.replace_tree(mirror_dir(env.home, env.name, target), state)
    return result


async def call(cfg: Config, env: Environment, target: Target, action: str,
               args: dict[str, Any], *, write: Write) -> HostResult:
    """Send one request to target; never raises for the host's own failures."""
    remote = env.remote
    assert remote is not None and env.home is not None
    outcome = HostResult(target)
    try:
        conn = await ssh.connect(remote, target)
    except RemoteError as exc:
        outcome.error = str(exc)
        return outcome
    try:
        base = base_of(remote, env.name, target)
        runtime = bundle.build(env.home)
        pyz = f"{base}/runtime/{runtime.name}"
        if not await conn.exists(pyz):
            write(f"  {target.label}: installing the dasct runtime ({runtime.name})")
            await conn.upload(runtime.path, pyz)
        request = _request(cfg, env, target, action, args, write)
        # exec: the engine is the session's own process, not a child of a shell.
        command = "exec " + " ".join(shlex.quote(a) for a in
                                     (remote.python, pyz, "_target", "--base", base))
        with request:
            status, stdout = await conn.execute(command, request, on_line=write)
        if status is None:
            raise RemoteError(f"{target.label}: the connection was lost during the run")
        if not stdout:
            raise RemoteError(f"{target.label}: dasct on the target answered nothing (exit "
                              f"{status}; its lines above say why)")
        outcome.result = _mirror(env, target, stdout)
        outcome.exit_code = int(outcome.result.get("exit_code", status))
    except RemoteError as exc:
        outcome.error = redact.scrub(str(exc))
    except (OSError, ssh.ssh_errors()) as exc:
        why = str(exc) or type(exc).__name__
        outcome.error = redact.scrub(f"{target.label}: the connection was lost ({why})")
    finally:
        await conn.close()
    return outcome
