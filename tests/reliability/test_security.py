"""Security: no code runs from a file, nothing goes to the network, exports carry no local paths.

1. The shipped source is scanned with ``ast`` for calls that can run code hidden in a file
   (unpickling, ``torch.load`` without ``weights_only=True``, ``eval``/``exec``, unsafe YAML) or
   hand a string to a shell. A self-test proves the scanner catches each pattern.
2. The headless commands run in one subprocess whose ``socket`` module refuses everything but
   local (AF_UNIX) sockets and records every attempt; the commands must succeed with no attempt.
3. The exports of a run trained in a distinctively named folder (ONNX, .pt2, safetensors, the
   standalone package and its zip, the HTML report) are scanned, bytes and all, for that folder,
   the home folder, the repository and the Python installation.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT

# -- 1. no code execution from files ---------------------------------------------------------------
#: Folders under the repository root that are not shipped code.
SKIPPED_DIRS = {"tests", "__pycache__", "build", "dist", "node_modules", "site-packages"}

#: Deliberate exceptions: ``(path relative to the root, called name): reason``. Keep it empty
#: unless a call is truly needed; every entry must still match a finding (see below).
EXEMPTIONS: dict[tuple[str, str], str] = {}

#: Modules whose load functions unpickle (run arbitrary code from the file).
_PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle"}
#: Always unsafe, whatever the arguments.
_UNSAFE_CALLS = {
    **{f"{m}.{f}": "unpickles" for m in _PICKLERS for f in ("load", "loads", "Unpickler")},
    "shelve.open": "unpickles", "shelve.Shelf": "unpickles", "shelve.DbfilenameShelf": "unpickles",
    "marshal.load": "loads marshalled code", "marshal.loads": "loads marshalled code",
    "joblib.load": "unpickles", "pandas.read_pickle": "unpickles",
    "yaml.load": "can build arbitrary objects (use yaml.safe_load)",
    "yaml.load_all": "can build arbitrary objects (use yaml.safe_load)",
    "yaml.unsafe_load": "builds arbitrary objects",
    "yaml.unsafe_load_all": "builds arbitrary objects",
    "yaml.full_load": "can build arbitrary objects (use yaml.safe_load)",
    "yaml.full_load_all": "can build arbitrary objects (use yaml.safe_load)",
    "builtins.eval": "runs a string as code", "builtins.exec": "runs a string as code",
    "builtins.compile": "compiles a string to code",
    "os.system": "runs a shell", "os.popen": "runs a shell",
    "subprocess.getoutput": "runs a shell", "subprocess.getstatusoutput": "runs a shell",
}
_SUBPROCESS = {f"subprocess.{f}" for f in ("run", "call", "check_call", "check_output", "Popen")}
#: Names a snippet may use without importing them (the project's own conventions).
_CONVENTIONAL = {"np": "numpy", "pd": "pandas"}


def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name it was imported as, from every import in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    names[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(func: ast.AST, aliases: dict[str, str]) -> str | None:
    """``np.load`` -> ``numpy.load``; a bare builtin ``eval`` -> ``builtins.eval``."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None  # a method of some object: obj.eval(), app.exec(), re.compile(...).match
    base = func.id
    if base in aliases:
        base = aliases[base]
    elif not parts and base in ("eval", "exec", "compile"):
        base = f"builtins.{base}"
    elif base == "__builtins__":
        base = "builtins"
    else:
        base = _CONVENTIONAL.get(base, base)
    return ".".join([base, *reversed(parts)])


def scan_source(source: str, filename: str = "<snippet>") -> list[tuple[int, str, str]]:
    """``(line, called name, why)`` for every call in *source* that can run code from data."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        why = _UNSAFE_CALLS.get(name)
        if name in ("torch.load", "torch.serialization.load") and not _is_true(
                _keyword(node, "weights_only")):
            why = "unpickles unless weights_only=True is given literally"
        elif name == "numpy.load":
            allow = node.args[2] if len(node.args) > 2 else _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                why = "allow_pickle other than False unpickles"
            elif any(k.arg is None for k in node.keywords):
                why = "**kwargs may carry allow_pickle=True"
        elif name in _SUBPROCESS:
            shell = _keyword(node, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
                why = "shell=True runs a shell"
            elif any(k.arg is None for k in node.keywords):
                why = "**kwargs may carry shell=True"
        if why:
            found.append((node.lineno, name, why))
    return found


def shipped_sources() -> list[Path]:
    """Every shipped Python file: *.py (and the PyInstaller *.spec) outside tests and venvs."""
    files = [p for p in ROOT.glob("*.spec") if p.is_file()]
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        files += [Path(folder, n) for n in sorted(names) if n.endswith(".py")]
    return files


BAD_SNIPPETS = [
    ("import pickle\npickle.load(f)", "pickle.load"),
    ("import pickle\npickle.loads(b)", "pickle.loads"),
    ("import pickle\npickle.Unpickler(f).load()", "pickle.Unpickler"),
    ("from pickle import loads\nloads(b)", "pickle.loads"),
    ("import pickle as p\np.loads(b)", "pickle.loads"),
    ("import cPickle\ncPickle.loads(b)", "cPickle.loads"),
    ("import _pickle\n_pickle.load(f)", "_pickle.load"),
    ("import dill\ndill.load(f)", "dill.load"),
    ("import shelve\nshelve.open('db')", "shelve.open"),
    ("import marshal\nmarshal.loads(b)", "marshal.loads"),
    ("import joblib\njoblib.load('m.joblib')", "joblib.load"),
    ("import torch\ntorch.load('m.pt')", "torch.load"),
    ("import torch\ntorch.load('m.pt', weights_only=False)", "torch.load"),
    ("import torch\ntorch.load('m.pt', weights_only=flag)", "torch.load"),
    ("import torch\ntorch.load('m.pt', **options)", "torch.load"),
    ("from torch import load\nload('m.pt')", "torch.load"),
    ("import numpy as np\nnp.load('a.npy', allow_pickle=True)", "numpy.load"),
    ("import numpy\nnumpy.load('a.npy', allow_pickle=flag)", "numpy.load"),
    ("import numpy\nnumpy.load('a.npy', None, True)", "numpy.load"),
    ("np.load('a.npy', allow_pickle=True)", "numpy.load"),
    ("eval('1 + 1')", "builtins.eval"),
    ("exec('x = 1')", "builtins.exec"),
    ("compile('1', 'f', 'eval')", "builtins.compile"),
    ("import builtins\nbuiltins.exec('x = 1')", "builtins.exec"),
    ("import yaml\nyaml.load(s, Loader=yaml.SafeLoader)", "yaml.load"),
    ("import yaml\nyaml.unsafe_load(s)", "yaml.unsafe_load"),
    ("import yaml\nyaml.full_load(s)", "yaml.full_load"),
    ("import pandas as pd\npd.read_pickle('f.pkl')", "pandas.read_pickle"),
    ("import subprocess\nsubprocess.run('ls', shell=True)", "subprocess.run"),
    ("import subprocess\nsubprocess.Popen(cmd, shell=use_shell)", "subprocess.Popen"),
    ("import subprocess\nsubprocess.call(cmd, **options)", "subprocess.call"),
    ("from subprocess import check_output\ncheck_output('ls', shell=True)",
     "subprocess.check_output"),
    ("import subprocess\nsubprocess.getoutput('ls')", "subprocess.getoutput"),
    ("import os\nos.system('ls')", "os.system"),
    ("from os import system\nsystem('ls')", "os.system"),
    ("import os\nos.popen('ls')", "os.popen"),
    ("def f():\n    import torch\n    return torch.load(p, map_location='cpu')", "torch.load"),
]

GOOD_SNIPPETS = [
    "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)",
    "import numpy as np\nnp.load('a.npy')",
    "import numpy as np\nnp.load('a.npy', allow_pickle=False)",
    "import yaml\nyaml.safe_load(s)",
    "import json\njson.loads(s)",
    "import re\nre.compile('x')",
    "from re import compile\ncompile('x')",
    "model.eval()\napp.exec()\ndialog.exec()",
    "import subprocess, sys\nsubprocess.run([sys.executable, 'x.py'], check=True)",
    "import subprocess\nsubprocess.run(['ls'], shell=False)",
    "from safetensors.torch import load_file\nload_file('w.safetensors')",
    "message = 'pickle.loads(b) can run arbitrary code'  # eval(x) in a comment",
]


@pytest.mark.parametrize("source, name", BAD_SNIPPETS, ids=[n for _, n in BAD_SNIPPETS])
def test_the_scanner_catches_each_unsafe_call(source, name):
    assert [n for _, n, _ in scan_source(source)] == [name]


@pytest.mark.parametrize("source", GOOD_SNIPPETS)
def test_the_scanner_lets_safe_calls_pass(source):
    assert scan_source(source) == []


def test_no_shipped_code_can_run_code_from_a_file():
    """An ``ast`` scan of every shipped Python file; each finding is named file:line."""
    files = shipped_sources()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    # The scan must reach every part of the product, or a clean result means nothing.
    assert {"main.py", "ml/cli.py", "ml/runs/folder.py", "ml/export/package.py",
            "resources/export/predict.py", "gui/app.py", "workers/base.py"} <= names
    assert any(n.startswith("bench/") for n in names) and len(files) > 50
    findings, used = [], set()
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for line, name, why in scan_source(path.read_text("utf-8"), str(path)):
            if (rel, name) in EXEMPTIONS:
                used.add((rel, name))
            else:
                findings.append(f"{rel}:{line}: {name}(...) {why}")
    assert not findings, "calls that can run code from a file:\n" + "\n".join(findings)
    assert all(reason.strip() for reason in EXEMPTIONS.values())
    assert used == set(EXEMPTIONS), f"stale exemptions: {set(EXEMPTIONS) - used}"


# -- 2. no network access ----------------------------------------------------------------------
#: Imported first by every Python process the tests start (it is first on PYTHONPATH).
NETWORK_GUARD = '''
"""Written by tests/reliability/test_security.py: this process may use local sockets only."""
import os
import socket

_LOG = os.environ["TRAINDESK_NET_GUARD_LOG"]
_Socket = socket.socket


def _note(line):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {line}\\n")


def _refuse(what):
    _note(f"refused {what}")
    raise OSError("network disabled by test")


class _LocalOnlySocket(_Socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        # family -1 means AF_INET; a fileno wraps an existing socket (socketpair, fromfd).
        if fileno is None and family != socket.AF_UNIX:
            _refuse(f"socket(family={family!r}, type={type!r})")
        super().__init__(family, type, proto, fileno)


def _refusing(name):
    def refuse(*args, **kwargs):
        _refuse(f"{name}{args!r}")
    return refuse


socket.socket = _LocalOnlySocket
for _name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
              "gethostbyname_ex", "gethostbyaddr"):
    setattr(socket, _name, _refusing(_name))
_note("guard active")
'''

#: Runs ``main.main(argv)`` for each command of a plan, all in one process (each start of
#: main.py costs seconds), and writes every exit status.
DRIVER = '''
import json, os, sys
root, plan, results = sys.argv[1:4]
sys.path.insert(0, root)
from main import main
done = []
for argv in json.loads(open(plan, encoding="utf-8").read()):
    print("=== main.py " + " ".join(argv), file=sys.stderr, flush=True)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    done.append({"argv": argv, "exit": code})
with open(results, "w", encoding="utf-8") as fh:
    json.dump({"pid": os.getpid(), "commands": done}, fh)
'''


def guarded_env(guard_dir: Path, log: Path, home: Path) -> dict[str, str]:
    guard_dir.mkdir(parents=True, exist_ok=True)
    (guard_dir / "sitecustomize.py").write_text(NETWORK_GUARD, "utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(guard_dir), env.get("PYTHONPATH")]))
    env["TRAINDESK_NET_GUARD_LOG"] = str(log)
    env["TRAINDESK_HOME"] = str(home)
    return env


def guard_log(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), what) for pid, what in
            (line.split(" ", 1) for line in log.read_text("utf-8").splitlines())]


BUILD_DIR_NAME = "secret-builder-dir"


@pytest.fixture(scope="module")
def headless_session(tmp_path_factory):
    """Every headless command the tests need, in one network-guarded process.

    The data file, the run and the exports all live under a folder named ``BUILD_DIR_NAME``,
    as a user's own folder would; the exports are then scanned for it.
    """
    base = tmp_path_factory.mktemp("security")
    build = base / BUILD_DIR_NAME
    build.mkdir()
    data = build / "flowers.csv"
    shutil.copyfile(ROOT / "resources" / "samples" / "iris.csv", data)
    pd.read_csv(data).drop(columns="species").head(12).to_csv(build / "new.csv", index=False)
    run, sample_run, out = build / "run", build / "sample-run", build / "exports"
    plan = [
        ["samples"],
        ["models"],
        ["train", "--data", "sample:iris", "--epochs", "2", "--out", str(sample_run)],
        ["evaluate", str(sample_run)],
        ["train", "--data", str(data), "--target", "species", "--epochs", "2", "--out", str(run)],
        ["predict", str(run), str(build / "new.csv"), "--out", str(build / "predictions.csv")],
        ["export", str(run), "--format", "onnx", "--out", str(out / "model.onnx")],
        ["export", str(run), "--format", "package", "--out", str(out / "package")],
        ["export", str(run), "--format", "pt2", "--out", str(out / "program.pt2")],
        ["export", str(run), "--format", "safetensors", "--out", str(out / "weights.safetensors")],
        ["export", str(run), "--format", "report", "--no-pdf", "--out", str(out / "report.html")],
    ]
    (base / "plan.json").write_text(json.dumps(plan), "utf-8")
    (base / "driver.py").write_text(DRIVER, "utf-8")
    log = base / "network.log"
    env = guarded_env(base / "guard", log, base / "home")
    proc = subprocess.run([sys.executable, str(base / "driver.py"), str(ROOT),
                           str(base / "plan.json"), str(base / "results.json")],
                          capture_output=True, text=True, env=env, cwd=str(base), timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((base / "results.json").read_text("utf-8"))
    return {"base": base, "build": build, "exports": out, "log": log, "results": results,
            "stderr": proc.stderr, "predictions": build / "predictions.csv"}


def test_the_network_guard_refuses_internet_sockets_and_allows_local_ones(tmp_path):
    """Without this, a guard that never loaded would make the test below pass vacuously."""
    log = tmp_path / "network.log"
    probe = textwrap.dedent("""
        import socket
        a, b = socket.socketpair()  # local: multiprocessing and event loops use these
        a.sendall(b"x"); assert b.recv(1) == b"x"
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        for attempt in (lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
                        lambda: socket.socket(),
                        lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
                        lambda: socket.getaddrinfo("example.com", 443)):
            try:
                attempt()
            except OSError as exc:
                assert str(exc) == "network disabled by test", exc
            else:
                raise SystemExit("not refused")
    """)
    env = guarded_env(tmp_path / "guard", log, tmp_path / "home")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    whats = [what for _, what in guard_log(log)]
    assert whats[0] == "guard active" and len(whats) == 5, whats
    assert [w.split("(")[0] for w in whats[1:]] == [
        "refused create_connection", "refused socket", "refused socket", "refused getaddrinfo"]


def test_the_headless_commands_work_with_the_network_disabled(headless_session):
    results = headless_session["results"]
    failed = [c for c in results["commands"] if c["exit"] != 0]
    assert not failed, f"{failed}\n{headless_session['stderr'][-4000:]}"
    assert [c["argv"][0] for c in results["commands"]] == [
        "samples", "models", "train", "evaluate", "train", "predict"] + ["export"] * 5
    entries = guard_log(headless_session["log"])
    # The guard was loaded in the process that ran the commands (and in any it started).
    assert (results["pid"], "guard active") in entries
    refused = [f"pid {pid}: {what}" for pid, what in entries if what != "guard active"]
    assert not refused, "network access attempted:\n" + "\n".join(refused)
    assert len(pd.read_csv(headless_session["predictions"])) == 12


# -- 3. no local paths in exports -------------------------------------------------------------
def _needles(build: Path) -> dict[str, str]:
    """What must not appear in an export: the builder's folders, by name and by full path."""
    needles = {"the build folder's name": BUILD_DIR_NAME, "the build folder": str(build),
               "the repository": str(ROOT),
               "the Python installation": sysconfig.get_paths()["purelib"],
               "the Python standard library": sysconfig.get_paths()["stdlib"]}
    home = str(Path.home())
    if len(home.strip(os.sep)) >= 3:  # "/" or "/x" would match anything
        needles["the home folder"] = home
    for what, text in list(needles.items()):
        if "/" in text:  # JSON writers may escape the slashes
            needles[f"{what} (escaped)"] = text.replace("/", "\\/")
    return needles


def _embedded(name: str, data: bytes):
    """*data* and what is inside it: zip members (.zip, .pt2), base64 images in HTML."""
    yield name, data
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield f"{name}!{member} (its name)", member.encode()
                yield from _embedded(f"{name}!{member}", archive.read(member))
    elif name.endswith((".html", ".htm")):
        for i, match in enumerate(re.finditer(rb"data:[\w/+.-]+;base64,([A-Za-z0-9+/=]+)", data)):
            yield from _embedded(f"{name}#embedded{i}", base64.b64decode(match.group(1)))


def test_the_path_scan_looks_inside_zip_members_and_embedded_images():
    """A compressed zip member or a base64 image hides a path from a plain byte search."""
    secret = f"/home/someone/{BUILD_DIR_NAME}/spec.py".encode()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/models/model.json", b'{"stack_trace": "' + secret * 20 + b'"}')
    html = b'<img src="data:image/png;base64,' + base64.b64encode(b"\x89PNG" + secret) + b'">'
    for name, data, where in [("program.pt2", archive.getvalue(),
                               "program.pt2!archive/models/model.json"),
                              ("report.html", html, "report.html#embedded0")]:
        assert secret not in data
        assert [inner for inner, blob in _embedded(name, data) if secret in blob] == [where]


def test_exports_carry_no_path_of_the_machine_that_built_them(headless_session):
    out, build = headless_session["exports"], headless_session["build"]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"model.onnx", "model.preprocessing.json", "program.pt2", "program.preprocessing.json",
            "weights.safetensors", "weights.preprocessing.json", "report.html", "package.zip",
            "package/model.onnx", "package/preprocessing.json", "package/predict.py",
            "package/README.txt", "package/requirements.txt"} <= names, names
    needles = {what: text.encode() for what, text in _needles(build).items()}
    leaks, scanned, n_bytes = [], 0, 0
    for path in files:
        for name, data in _embedded(path.relative_to(out).as_posix(), path.read_bytes()):
            scanned += 1
            n_bytes += len(data)
            leaks += [f"{name}: {what} {needle.decode()!r}" for what, needle in needles.items()
                      if needle in data]
            if name.endswith(".py"):  # code we hand to others passes the scan of part 1
                leaks += [f"{name}:{line}: {call}(...) {why}"
                          for line, call, why in scan_source(data.decode("utf-8"), name)]
    assert not leaks, "exports reveal the machine that built them:\n" + "\n".join(leaks)
    assert scanned > len(files) and n_bytes > 50_000  # the zips and images were opened
