"""Images for the built-in runtime: a local OCI store, archive import, a hardened unpacker.

Knows nothing of compose. What the namespace adapter calls::

    from orchestrator.runtime.images import Store

    store = Store.at_state_root(state_root) # <state_root>/images, created lazily
    refs = store.load_archive(path_or_file) # `docker save` or OCI archive → tuple[ImageRef, ...]
    refs = load_docker_save(store, client.images.get(n).save())   # from a Docker engine
    image = store.resolve("busybox")        # name (":latest" implied), "sha256:<id|digest>",
                                            # or an id prefix of >= 12 hex digits
    image.config                            # ImageConfig: entrypoint, cmd, env, working_dir,
                                            # user, exposed_ports, volumes, stop_signal,
                                            # healthcheck, labels
    image.layers                            # unpacked layer dirs, bottom first (read-only!)
    image.lowerdir                          # "top:...:bottom" for overlayfs lowerdir=
    store.list()                            # tuple[ImageSummary, ...] (names, id, size, created)
    store.remove("busybox")                 # drops the name; unreferenced blobs/layers go too

``ImageRef.id`` is the config digest (what Docker calls the image id); ``ImageRef.digest``
the manifest's. Errors: :class:`ImageNotFound` (a ``NotFound``), :class:`UnsafeLayer`,
:class:`DigestMismatch`, :class:`InvalidArchive` (all ``RuntimeFailure``).

Layer directories are shared by every container of every image that has the layer: mount
them read-only (as overlayfs lowerdirs) and never write, chown or follow a symlink inside
them from the host. Whiteouts in them are already in overlayfs form. Extraction needs root.
"""

from orchestrator.runtime.images.config import Healthcheck, ImageConfig, parse_image_config
from orchestrator.runtime.images.docker import load_docker_save
from orchestrator.runtime.images.errors import (
    DigestMismatch,
    ImageError,
    ImageNotFound,
    InvalidArchive,
    UnsafeLayer,
)
from orchestrator.runtime.images.extract import ExtractedLayer, Limits, extract_layer
from orchestrator.runtime.images.store import Image, ImageRef, ImageSummary, Store, normalize_name

__all__ = [
    "DigestMismatch",
    "ExtractedLayer",
    "Healthcheck",
    "Image",
    "ImageConfig",
    "ImageError",
    "ImageNotFound",
    "ImageRef",
    "ImageSummary",
    "InvalidArchive",
    "Limits",
    "Store",
    "UnsafeLayer",
    "extract_layer",
    "load_docker_save",
    "normalize_name",
    "parse_image_config",
]
