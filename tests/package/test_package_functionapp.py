"""Tests for scripts/package-functionapp: the zip's entries, their mode bits, the handler's format,
and the workloads file it carries when the repository root has one.

Fast by default: the handler is a tiny program compiled with rustc, passed with --binary.
With PACKAGE_TEST_REAL_BUILD=1 the script also builds the real handler (static release build) and
the packaged executable is checked.

Run: python3 -m unittest discover -s tests/package -v
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "package-functionapp"


def load_script():
    loader = importlib.machinery.SourceFileLoader("package_functionapp", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


pkg = load_script()

# The functions the package must carry: the Event Grid trigger and the reconciliation timer.
FUNCTIONS = ("BlobCreated", "Reconcile")


def expected_entries(root: Path = ROOT) -> list[str]:
    functions = sorted(
        f"{p.name}/function.json"
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "function.json").is_file()
    )
    workloads = ["workloads.toml"] if (root / "workloads.toml").is_file() else []
    return sorted(["host.json", "blob2batch", *functions, *workloads])


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )


def compile_tiny(dest: Path, static: bool) -> Path:
    src = dest.with_suffix(".rs")
    src.write_text('fn main() { println!("tiny"); }\n')
    cmd = ["rustc", "--edition", "2021", "-C", "opt-level=0", "-C", "debuginfo=0",
           "--target", "x86_64-unknown-linux-gnu", "-o", str(dest), str(src)]
    if static:
        cmd[1:1] = ["-C", "target-feature=+crt-static"]
    subprocess.run(cmd, check=True, capture_output=True)
    return dest


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="pkgtest-"))
        if shutil.which("rustc") is None:
            raise unittest.SkipTest("rustc is needed to compile the test executables")
        cls.static_bin = compile_tiny(cls.tmp / "tiny-static", static=True)
        cls.dynamic_bin = compile_tiny(cls.tmp / "tiny-dynamic", static=False)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def package(self, binary: Path, name: str) -> Path:
        out = self.tmp / name
        res = run_script("--binary", str(binary), "--output", str(out))
        self.assertEqual(res.returncode, 0, res.stderr)
        return out

    def assert_package(self, zip_path: Path, binary: Path) -> None:
        with zipfile.ZipFile(zip_path) as zf:
            self.assertIsNone(zf.testzip())
            infos = zf.infolist()
            names = [i.filename for i in infos]
            self.assertEqual(names, expected_entries(),
                             "exactly host.json, the function folders, the handler (and workloads.toml if any)")
            for function in FUNCTIONS:
                entry = f"{function}/function.json"
                self.assertIn(entry, names)
                self.assertEqual(zf.read(entry), (ROOT / entry).read_bytes(), entry)
            for info in infos:
                mode = info.external_attr >> 16
                self.assertEqual(info.create_system, 3, f"{info.filename}: created-by must be Unix")
                self.assertTrue(stat.S_ISREG(mode), f"{info.filename}: must be a regular file")
                want = 0o755 if info.filename == "blob2batch" else 0o644
                self.assertEqual(stat.S_IMODE(mode), want, f"{info.filename}: mode {oct(stat.S_IMODE(mode))}")
            self.assertEqual(zf.read("blob2batch"), binary.read_bytes())
            self.assertEqual(zf.read("host.json"), (ROOT / "host.json").read_bytes())

    def test_entries_and_modes(self):
        out = self.package(self.static_bin, "a.zip")
        self.assert_package(out, self.static_bin)

    def repository_root(self, name: str, workloads: bytes | None) -> Path:
        """A copy of the repository root as the script reads it: host.json, the function folders
        and, unless `workloads` is None, a workloads.toml holding it."""
        root = self.tmp / name
        root.mkdir()
        shutil.copyfile(ROOT / "host.json", root / "host.json")
        for function in FUNCTIONS:
            (root / function).mkdir()
            shutil.copyfile(ROOT / function / "function.json", root / function / "function.json")
        if workloads is not None:
            (root / "workloads.toml").write_bytes(workloads)
        return root

    def test_carries_the_workloads_file_at_its_root(self):
        # WORKLOADS_FILE=workloads.toml is read from the handler's working directory, the app's
        # root: the file goes to the package root, as a plain file beside the executable handler.
        text = b'version = 1\n\n[[workload]]\nname = "wordcount"\nsuffix = ".txt"\n'
        root = self.repository_root("with-workloads", text)
        out = self.tmp / "w.zip"
        names = pkg.write_package(self.static_bin, out, root=root)
        self.assertEqual(names, expected_entries(root))
        self.assertIn("workloads.toml", names)
        with zipfile.ZipFile(out) as zf:
            self.assertIsNone(zf.testzip())
            self.assertEqual([i.filename for i in zf.infolist()], names)
            self.assertEqual(zf.read("workloads.toml"), text)
            for name, want in [("workloads.toml", 0o644), ("blob2batch", 0o755)]:
                info = zf.getinfo(name)
                mode = info.external_attr >> 16
                self.assertEqual(info.create_system, 3, f"{name}: created-by must be Unix")
                self.assertTrue(stat.S_ISREG(mode), f"{name}: must be a regular file")
                self.assertEqual(stat.S_IMODE(mode), want, f"{name}: mode {oct(stat.S_IMODE(mode))}")

    def test_no_workloads_file_without_one_at_the_root(self):
        root = self.repository_root("without-workloads", None)
        out = self.tmp / "n.zip"
        names = pkg.write_package(self.static_bin, out, root=root)
        self.assertEqual(names, sorted(["host.json", "blob2batch", *(f"{f}/function.json" for f in FUNCTIONS)]))
        with zipfile.ZipFile(out) as zf:
            self.assertNotIn("workloads.toml", zf.namelist())

    def test_mode_survives_extraction(self):
        out = self.package(self.static_bin, "x.zip")
        dest = self.tmp / "extract"
        # unzip(1) applies the Unix mode from the external attributes, as the Linux host does.
        if shutil.which("unzip") is None:
            self.skipTest("unzip not installed")
        subprocess.run(["unzip", "-q", "-o", str(out), "-d", str(dest)], check=True)
        self.assertTrue(os.access(dest / "blob2batch", os.X_OK))
        res = subprocess.run([str(dest / "blob2batch")], capture_output=True, text=True)
        self.assertEqual(res.stdout.strip(), "tiny")

    def test_reproducible(self):
        a = self.package(self.static_bin, "r1.zip")
        b = self.package(self.static_bin, "r2.zip")
        self.assertEqual(a.read_bytes(), b.read_bytes())

    def test_host_json_starts_the_handler(self):
        import json
        host = json.loads((ROOT / "host.json").read_text())
        desc = host["customHandler"]["description"]
        self.assertEqual(desc["defaultExecutablePath"], "blob2batch")
        self.assertEqual(desc["arguments"], ["serve"])
        fn = json.loads((ROOT / "BlobCreated" / "function.json").read_text())
        self.assertEqual(fn["bindings"], [{"type": "eventGridTrigger", "name": "event", "direction": "in"}])
        # The host calls the handler with POST /Reconcile on the schedule in RECONCILE_SCHEDULE.
        fn = json.loads((ROOT / "Reconcile" / "function.json").read_text())
        self.assertEqual(fn["bindings"], [{"type": "timerTrigger", "direction": "in", "name": "timer",
                                           "schedule": "%RECONCILE_SCHEDULE%"}])

    def test_rejects_dynamic_executable(self):
        res = run_script("--binary", str(self.dynamic_bin), "--output", str(self.tmp / "d.zip"))
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("dynamically linked", res.stderr)
        self.assertFalse((self.tmp / "d.zip").exists())

    def test_rejects_non_elf(self):
        script = self.tmp / "not-elf"
        script.write_text("#!/bin/sh\necho hi\n")
        res = run_script("--binary", str(script), "--output", str(self.tmp / "n.zip"))
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("not an ELF file", res.stderr)

    def test_binary_from_environment(self):
        out = self.tmp / "env.zip"
        env = dict(os.environ, BLOB2BATCH_BINARY=str(self.static_bin))
        res = run_script("--output", str(out), env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assert_package(out, self.static_bin)

    def test_elf_check_classifies(self):
        self.assertIn("static", pkg.check_elf(self.static_bin))
        with self.assertRaises(pkg.PackageError):
            pkg.check_elf(self.dynamic_bin)

    @unittest.skipUnless(os.environ.get("PACKAGE_TEST_REAL_BUILD") == "1", "set PACKAGE_TEST_REAL_BUILD=1")
    def test_real_build(self):
        out = self.tmp / "real.zip"
        res = subprocess.run([sys.executable, str(SCRIPT), "--output", str(out)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(res.returncode, 0, res.stdout)
        built = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "x86_64-unknown-linux-gnu" / "release" / "blob2batch"
        self.assert_package(out, built)
        extracted = self.tmp / "real-blob2batch"
        with zipfile.ZipFile(out) as zf:
            extracted.write_bytes(zf.read("blob2batch"))
        self.assertIn("static", pkg.check_elf(extracted))
        if shutil.which("file"):
            desc = subprocess.run(["file", "-b", str(extracted)], capture_output=True, text=True).stdout
            self.assertIn("x86-64", desc)
            self.assertRegex(desc, r"static(-pie)? linked")


if __name__ == "__main__":
    unittest.main()
