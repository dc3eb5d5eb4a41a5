"""Build both deploy images with buildah and smoke-test them inside (CI runs this).

No Docker daemon: Debian's ``buildah`` builds ``deploy/Dockerfile`` (ECS) and
``deploy/lambda/Dockerfile`` (Lambda) with ``--isolation chroot`` on ``vfs``
storage, on a base image made here with ``mmdebstrap`` (Debian bookworm with
python3 in a venv: the same Python 3.11 as the real bases) and passed as the
Dockerfiles' ``BASE_IMAGE`` build argument. The build gets the host's pip
configuration and CA certificates as read-only volumes and the host's network,
so pip reaches the package index as the host does; nothing of it enters a layer
(checked). The base tarball is cached between runs while its recipe is unchanged.

Then ``images_smoke.py`` runs the images against the simulator, a TLS-only
PostgreSQL and moto's server. Prints timings and image sizes; exits non-zero on
the first failure.

    python scripts/build_images.py            # build, scan, smoke
    python scripts/build_images.py --no-smoke # build and scan only
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("FULLBAY_IMAGES_CACHE", Path.home() / ".cache" / "fullbay-dagster-images"))
SUITE = "bookworm"
# passwd: the ECS Dockerfile adds its user with groupadd/useradd (python:3.11-slim has them).
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates", "passwd")
# Debian's Python refuses `pip install` outside a venv (PEP 668); the official python
# images install into /usr/local. A venv first on PATH gives the Dockerfiles the same
# `pip`/`python`/console scripts.
HOOKS = (
    'chroot "$1" python3 -m venv /opt/venv',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb',
)
BASE_ENV = ("PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
BASE_TAG = "localhost/fullbay-ci-base:bookworm"
ECS_TAG = "localhost/fullbay-dagster:ci"
LAMBDA_TAG = "localhost/fullbay-dagster-lambda:ci"
IMAGES = {ECS_TAG: "deploy/Dockerfile", LAMBDA_TAG: "deploy/lambda/Dockerfile"}
BUILDAH = ("buildah", "--storage-driver", "vfs")
# Written into the build context during the build: the ignore files must keep it out.
DECOY = ".env.images-ci-decoy"
PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".config/pip/pip.conf")
TIMINGS: dict[str, float] = {}


def log(message: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*args: str, capture: bool = False, **kwargs: object) -> str:
    result = subprocess.run(args, check=True, text=True, stdout=subprocess.PIPE if capture else None, **kwargs)  # type: ignore[call-overload]
    return str(result.stdout or "").strip()


def buildah(*args: str, capture: bool = True) -> str:
    return run(*BUILDAH, *args, capture=capture)


@contextmanager
def timed(name: str) -> Iterator[None]:
    started = time.monotonic()
    log(f"{name} ...")
    yield
    TIMINGS[name] = time.monotonic() - started
    log(f"{name}: {TIMINGS[name]:.0f} s")


def ensure_tools() -> None:
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        log(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-q", env=env)
        run("apt-get", "install", "-y", "-q", "buildah", "mmdebstrap", env=env)


def _sources() -> str:
    """The host's Debian sources when they are bookworm's (mirror, security), else Debian's CDN."""
    host = Path("/etc/apt/sources.list.d/debian.sources")
    if host.exists() and SUITE in host.read_text():
        return str(host)
    return "http://deb.debian.org/debian"


def base_tarball() -> tuple[Path, str]:
    sources = _sources()
    recipe = {"suite": SUITE, "packages": PACKAGES, "hooks": HOOKS, "sources": sources}
    if Path(sources).exists():
        recipe["sources_text"] = Path(sources).read_text()
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    tarball = CACHE / f"base-{SUITE}-{key}.tar"
    if tarball.exists():
        log(f"base tarball cached: {tarball}")
        return tarball, key
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob(f"base-{SUITE}-*.tar"):
        stale.unlink()
    partial = tarball.with_suffix(".partial.tar")
    hooks = [f"--customize-hook={hook}" for hook in HOOKS]
    run("mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", *hooks, SUITE, str(partial), sources)
    partial.rename(tarball)
    return tarball, key


def import_base(tarball: Path, key: str, mounts: dict[str, str]) -> None:
    """``buildah from scratch`` + mount + tar + commit, labelled with the recipe's key.

    The build's volume targets are created here, empty: buildah creates a missing
    target in the layer being built, and the images' own layers should hold
    nothing of the build machine, not even empty stand-ins.
    """
    key = hashlib.sha256(json.dumps([key, sorted(mounts.values())]).encode()).hexdigest()[:16]
    try:
        inspected = run(*BUILDAH, "inspect", "--type", "image", BASE_TAG, capture=True, stderr=subprocess.DEVNULL)
        labels = json.loads(inspected)["OCIv1"]["config"].get("Labels") or {}
        if labels.get("fullbay.base-key") == key:
            log(f"base image {BASE_TAG} is current")
            return
    except subprocess.CalledProcessError:
        pass
    container = buildah("from", "scratch")
    try:
        mount = buildah("mount", container)
        run("tar", "--numeric-owner", "--xattrs", "-xpf", str(tarball), "-C", mount)
        for host, inside in mounts.items():
            target = Path(mount + inside)
            if Path(host).is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
        settings = [arg for env in BASE_ENV for arg in ("--env", env)]
        buildah("config", *settings, "--cmd", "python3", "--label", f"fullbay.base-key={key}", container)
        buildah("commit", "--rm", container, BASE_TAG)
        buildah("rmi", "--prune")  # the previous base, now untagged
    except BaseException:
        buildah("rm", container)
        raise


def pip_mounts() -> dict[str, str]:
    """The host's pip configuration files, the local folders they name, and the CA
    certificates, as read-only volumes of every RUN (not copied into any layer)."""
    home = Path.home()
    certs = [folder for folder in ("/etc/ssl/certs", "/usr/local/share/ca-certificates") if Path(folder).is_dir()]
    mounts: dict[str, str] = {folder: folder for folder in certs}
    for path in PIP_CONFIGS:
        if not path.is_file():
            continue
        inside = "/root/" + str(path.relative_to(home)) if path.is_relative_to(home) else str(path)
        mounts[str(path)] = inside
        parser = configparser.ConfigParser()
        parser.read(path)
        for section in parser.sections():
            for value in parser[section].values():
                for word in value.split():
                    local = Path(word.removeprefix("file://"))
                    if local.is_file():  # a CA bundle, a constraints file: only that file
                        if not any(local.is_relative_to(folder) for folder in certs):
                            mounts[str(local)] = str(local)
                    elif local.is_absolute() and local.is_dir():
                        # e.g. /opt/pypi/simple: mount /opt/pypi, its pages link to files beside.
                        top = Path(*local.parts[:3])
                        mounts[str(top)] = str(top)
    return mounts


def build_all(mounts: dict[str, str]) -> None:
    """Both images at once (most of a build is pip waiting on downloads and vfs
    copying), each logging to its own file, shown when it fails."""
    CACHE.mkdir(parents=True, exist_ok=True)
    builds = {}
    for tag, dockerfile in IMAGES.items():
        with contextlib.suppress(subprocess.CalledProcessError):  # not built before
            run(*BUILDAH, "rmi", "--force", tag, capture=True, stderr=subprocess.DEVNULL)
        log_path = CACHE / f"build-{tag.rsplit('/', 1)[-1].replace(':', '-')}.log"
        with log_path.open("w") as handle:
            process = subprocess.Popen(bud_command(tag, dockerfile, mounts), stdout=handle, stderr=subprocess.STDOUT)
        builds[tag] = (process, log_path, time.monotonic())
    failed = []
    for tag, (process, log_path, started) in builds.items():
        code = process.wait()
        TIMINGS[f"build {tag}"] = time.monotonic() - started
        log(f"build {tag}: exit {code}, {TIMINGS[f'build {tag}']:.0f} s (log: {log_path})")
        if code != 0:
            failed.append(tag)
            print(log_path.read_text()[-6000:], flush=True)
    if failed:
        raise SystemExit(f"build failed: {', '.join(failed)}")


def bud_command(tag: str, dockerfile: str, mounts: dict[str, str]) -> list[str]:
    ignorefile = ROOT / f"{dockerfile}.dockerignore"
    return [
        *BUILDAH,
        "bud",
        "--isolation", "chroot",
        "--network", "host",
        "--pull=never",
        "--build-arg", f"BASE_IMAGE={BASE_TAG}",
        "--file", str(ROOT / dockerfile),
        "--ignorefile", str(ignorefile),
        *(arg for host, inside in mounts.items() for arg in ("--volume", f"{host}:{inside}:ro")),
        "--tag", tag,
        str(ROOT),
    ]  # fmt: skip


# A line of the project's code: the scan must find it, or it read nothing.
CONTROL = b'PAYLOAD_KEY = "dagster_run"'


def scan_layers(tag: str, needles: dict[str, bytes], forbidden_paths: set[str]) -> tuple[int, int]:
    """Every file of every layer of ``tag``: none may hold a needle or be a forbidden path."""
    controls = 0
    with tempfile.TemporaryDirectory(prefix="fullbay-scan-") as folder:
        buildah("push", "--disable-compression", tag, f"oci:{folder}:scan")
        index = json.loads(Path(folder, "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.loads(Path(folder, "blobs/sha256", manifest_digest).read_text())
        files = 0
        for layer in manifest["layers"]:
            blob = Path(folder, "blobs/sha256", layer["digest"].split(":", 1)[1])
            with tarfile.open(blob, mode="r|*") as archive:
                for member in archive:
                    name = member.name.removeprefix("./")
                    if name in forbidden_paths and member.size > 0:
                        raise SystemExit(f"{tag}: layer {layer['digest'][:19]} holds /{name}")
                    if not member.isfile():
                        continue
                    files += 1
                    handle = archive.extractfile(member)
                    data = handle.read() if handle else b""
                    controls += CONTROL in data
                    for what, needle in needles.items():
                        if needle in data:
                            raise SystemExit(f"{tag}: {what} found in /{name} (layer {layer['digest'][:19]})")
        if not controls:
            raise SystemExit(f"{tag}: the scan did not find the project's own code: it proves nothing")
        return len(manifest["layers"]), files


def image_sizes() -> dict[str, str]:
    sizes = {}
    for line in buildah("images", "--format", "{{.Name}}:{{.Tag}} {{.Size}}").splitlines():
        name, _, size = line.strip().partition(" ")
        if name in (BASE_TAG, *IMAGES):
            sizes[name] = size.strip()
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-smoke", action="store_true", help="build and scan only")
    parser.add_argument("--no-build", action="store_true", help="smoke-test the images already built")
    options = parser.parse_args()
    import images_smoke  # next to this file; imports the project (run with the project's venv)

    started = time.monotonic()
    secrets = images_smoke.Secrets.generate()
    if not options.no_build:
        ensure_tools()
        mounts = pip_mounts()
        with timed("base image (mmdebstrap, cached)"):
            tarball, key = base_tarball()
            import_base(tarball, key, mounts)
        decoy = ROOT / DECOY
        decoy.write_text(f"FULLBAY_API_KEY={secrets.api_key}\nDB_PASSWORD={secrets.db_password}\n")
        try:
            with timed("build both images"):
                build_all(mounts)
        finally:
            decoy.unlink()
        configs = {inside.lstrip("/"): Path(host) for host, inside in mounts.items() if Path(host) in PIP_CONFIGS}
        needles = secrets.needles() | {
            f"the host's {host}": host.read_bytes().strip() for host in configs.values() if host.read_bytes().strip()
        }
        for tag in IMAGES:
            with timed(f"scan {tag}"):
                layers, files = scan_layers(tag, needles, {DECOY, *configs})
                log(f"{tag}: {layers} layers, {files} files: no test secret, no decoy, no host pip config")
    if not options.no_smoke:
        with timed("smoke tests"):
            images_smoke.run_all(ECS_TAG, LAMBDA_TAG, secrets)
    TIMINGS["total"] = time.monotonic() - started
    log("timings: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in TIMINGS.items()))
    log("sizes: " + ", ".join(f"{name} {size}" for name, size in image_sizes().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
