"""``bind.create_host_path``: the short syntax creates a missing host path (as docker
does), the long syntax only when it says so (the compose spec's default is false)."""

from __future__ import annotations

import yaml

from orchestrator.loader.bind import bind
from orchestrator.loader.canonical import canonicalize
from orchestrator.loader.document import Document
from orchestrator.loader.normalize import normalize

TEXT = """
services:
  web:
    image: x
    volumes:
      - ./short:/short
      - {type: bind, source: ./long, target: /long}
      - {type: bind, source: ./asked, target: /asked, bind: {create_host_path: true}}
"""


def test_only_the_short_syntax_and_an_explicit_true_create_the_host_path() -> None:
    doc = Document(file="compose.yaml", data=yaml.safe_load(TEXT))
    doc = normalize(canonicalize(doc), project_name="p", working_dir="/proj", environment={})
    project = bind(doc, project_name="p", working_dir="/proj", config_files=(),
                   active_profiles=())
    volumes = project.services["web"].volumes
    assert [(v.source, v.bind_create_host_path) for v in volumes] == [
        ("/proj/short", True),
        ("/proj/long", False),
        ("/proj/asked", True),
    ]
