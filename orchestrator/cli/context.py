"""Global flags, shared by every command, turned into options objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.loader.discover import LoadOptions, split_list


@dataclass
class GlobalOptions:
    files: tuple[str, ...] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    backend: str | None = None
    dry_run: bool = False
    progress: str = "auto"  # auto | tty | plain | json | quiet
    parallel: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def load_options(self, **overrides: object) -> LoadOptions:
        values: dict[str, object] = {
            "files": self.files,
            "project_name": self.project_name,
            "project_directory": self.project_directory,
            "env_files": self.env_files or None,
            "profiles": split_list(self.profiles),
            "schema_cache": True,
        }
        values.update(overrides)
        return LoadOptions(**values)  # type: ignore[arg-type]
