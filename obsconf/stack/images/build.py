"""`obsconf images`: build the local image set here, where no registry can be pulled from.

Static Go builds (VictoriaLogs, Jaeger, FerretDB, the collector) go `FROM scratch`, and so do
Debian's Prometheus and nats-server, Go binaries that need only the C library: the shared
objects `ldd` lists are copied beside them. The native implementations (stack/native.py: the
Go inventory service) go `FROM scratch` too, from their cached static builds. PostgreSQL, which
needs many libraries and files, goes on a base made with `debootstrap` and `docker import`; the
debootstrap rootfs is cached as a tarball under the binary cache, keyed by suite and package
list, so it is made once per machine. Every image is built from the same binaries the local
backend runs (`obsconf install` first). Re-running is cheap: Docker's build cache keys each
COPY by content.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from obsconf.stack import binaries, native
from obsconf.stack.docker_engine import docker_client
from obsconf.stack.images import image_for

if TYPE_CHECKING:
    from docker import DockerClient

HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("postgresql-15", "ca-certificates")
# Trimmed from the rootfs: package archives and documentation nothing at run time reads.
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")


class ImageBuildError(RuntimeError):
    """One image failed to build; the message names it and carries the build output tail."""


@dataclass(frozen=True)
class LocalImage:
    component: str  # key in [images.local]
    binary: str | None  # executable copied into the build context, if any
    needs_base: bool
    shared_libs: bool = False  # copy the binary's `ldd` libraries into rootfs/ of the context


LOCAL_IMAGES = (
    LocalImage("logs", "victoria-logs", needs_base=False),
    LocalImage("traces", "jaeger", needs_base=False),
    LocalImage("collector", "otelcol-obsconf", needs_base=False),
    LocalImage("mongodb", "ferretdb", needs_base=False),
    LocalImage("nats", "nats-server", needs_base=False, shared_libs=True),
    LocalImage("prometheus", "prometheus", needs_base=False, shared_libs=True),
    LocalImage("postgres", None, needs_base=True),
    LocalImage("inventory-go", "inventory-go", needs_base=False),
)


def _say(message: str) -> None:
    print(f"[images] {message}", flush=True)


def base_key() -> str:
    return hashlib.sha256(f"{SUITE} {MIRROR} {sorted(BASE_PACKAGES)}".encode()).hexdigest()[:12]


def base_tag() -> str:
    return f"obsconf/debian-base:{SUITE}-{base_key()}"


def base_tarball() -> Path:
    return binaries.cache_root() / "images" / f"debian-base-{SUITE}-{base_key()}.tar"


def make_base_tarball() -> Path:
    """The debootstrap rootfs as a tarball (cached; made once per machine)."""
    target = base_tarball()
    if target.exists():
        return target
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is missing: `apt-get install debootstrap`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="debootstrap-") as work:
        rootfs = Path(work) / "rootfs"
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            SUITE,
            str(rootfs),
            MIRROR,
        ]
        _say(f"debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} (a minute or two)")
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise ImageBuildError(f"debootstrap failed: {' '.join(command)}\n{tail}")
        for trimmed in TRIM:
            shutil.rmtree(rootfs / trimmed, ignore_errors=True)
        staged = Path(work) / "base.tar"
        with tarfile.open(staged, "w") as tar:
            tar.add(rootfs, arcname=".")
        staged.replace(target)
        _say(f"base rootfs made in {time.monotonic() - started:.0f}s: {target}")
    return target


def ensure_base(client: DockerClient) -> str:
    """The debootstrap base image, imported into the engine if it is not there yet."""
    import docker.errors

    tag = base_tag()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    tarball = make_base_tarball()
    repository, version = tag.split(":")
    started = time.monotonic()
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    _say(f"imported {tag} in {time.monotonic() - started:.0f}s")
    return tag


def copy_shared_libs(binary: Path, rootfs: Path) -> list[str]:
    """Copy every shared object `ldd` lists for `binary` to the same path under `rootfs`."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"ldd {binary} failed: {proc.stderr.strip()}")
    copied = []
    for line in proc.stdout.splitlines():
        path = next((part for part in line.split() if part.startswith("/")), None)
        if path is None:
            continue  # linux-vdso: provided by the kernel
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(path).resolve(), target)
        copied.append(path)
    return copied


def build_image(client: DockerClient, image: LocalImage, base: str | None) -> str:
    """Build one local image from its directory here plus its binary; returns the tag."""
    import docker.errors

    tag = image_for(image.component, "local")
    with tempfile.TemporaryDirectory(prefix=f"obsconf-image-{image.component}-") as context:
        shutil.copytree(HERE / image.component, context, dirs_exist_ok=True)
        if image.binary:
            source = (
                native.ensure_built(image.binary, _say)
                if image.binary in native.NATIVE
                else binaries.require(image.binary)[image.binary]
            )
            shutil.copy2(source, Path(context) / image.binary)
            if image.shared_libs:
                copy_shared_libs(source, Path(context) / "rootfs")
        started = time.monotonic()
        try:
            client.images.build(
                path=context,
                tag=tag,
                buildargs={"BASE": base} if base else None,
                rm=True,
                forcerm=True,
                pull=False,
            )
        except docker.errors.BuildError as error:
            log = "".join(str(chunk.get("stream", chunk)) for chunk in error.build_log)
            tail = "\n".join(log.splitlines()[-20:])
            raise ImageBuildError(f"image {tag} failed to build: {error.msg}\n{tail}") from None
    _say(f"{tag}: built in {time.monotonic() - started:.1f}s")
    return tag


def build_local_images(components: tuple[str, ...] = ()) -> dict[str, str]:
    """Build the local image set (or the named components); returns component -> tag."""
    wanted = [i for i in LOCAL_IMAGES if not components or i.component in components]
    unknown = sorted(set(components) - {i.component for i in LOCAL_IMAGES})
    if unknown:
        raise ImageBuildError(
            f"no local image for {unknown}; known: {[i.component for i in LOCAL_IMAGES]}"
        )
    client = docker_client()
    try:
        base = ensure_base(client) if any(i.needs_base for i in wanted) else None
        return {i.component: build_image(client, i, base if i.needs_base else None) for i in wanted}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="obsconf images", description=__doc__.splitlines()[0])
    parser.add_argument("components", nargs="*", help="only these (default: all)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    built = build_local_images(tuple(args.components))
    _say(
        f"{len(built)} image(s) ready in {time.monotonic() - started:.0f}s; "
        "the container backend uses them with OBSCONF_IMAGES=local"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
