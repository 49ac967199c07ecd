"""An import-linter contract that import-linter does not ship: an allow-list.

``forbidden`` names what a package may not import, so a domain added later is allowed without anyone
deciding it. ``allowed`` names what a package's modules may import directly from our own packages;
anything else of ours is a broken contract, a new domain included. Imports of outside libraries and
of the package's own modules are not judged; indirect imports are the imported module's business.

Registered in ``.importlinter`` (``contract_types = allowed: devtools.import_contracts.AllowedContract``);
``make lint`` runs it through ``lint-imports``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from importlinter import Contract, ContractCheck, fields, output


@dataclass
class _Illegal:
    importer: str
    imported: str
    line_numbers: tuple[int, ...] = field(default_factory=tuple)


def _within(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


class AllowedContract(Contract):
    """``source_modules`` may directly import, of ``internal_packages``, only themselves and
    ``allowed_modules`` (each with its descendants)."""

    type_name = "allowed"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())
    internal_packages = fields.ListField(subfield=fields.StringField())
    broken_contract_guidance = fields.StringField(required=False)

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        sources: set[str] = set(self.source_modules)  # type: ignore[call-overload]
        allowed: set[str] = set(self.allowed_modules)  # type: ignore[call-overload]
        internal: set[str] = set(self.internal_packages)  # type: ignore[call-overload]
        for name in sorted(sources | allowed):
            if name not in graph.modules:
                raise ValueError(f"contract {self.name!r}: module {name} is not in the graph (a typo?)")
        illegal: list[_Illegal] = []
        for source in sorted(sources):
            for importer in sorted({source} | graph.find_descendants(source)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if not _within(imported, internal) or _within(imported, sources | allowed):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = tuple(d["line_number"] for d in details)
                    illegal.append(_Illegal(importer, imported, lines))
        return ContractCheck(kept=not illegal, warnings=[], metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["illegal"]:
            where = f" (l.{', '.join(map(str, item.line_numbers))})" if item.line_numbers else ""
            output.print_error(f"- {item.importer} -> {item.imported}{where}: not on the allow-list", bold=False)
            output.new_line()
        if self.broken_contract_guidance:
            output.print(str(self.broken_contract_guidance))
