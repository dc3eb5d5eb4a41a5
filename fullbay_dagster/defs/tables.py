"""Definition metadata of the table assets, generated from the SQLAlchemy tables.

Every table the pipeline writes is an asset. Its ``dagster/table_name``, column
schema and code reference come from ``warehouse/schema.py`` so they can never
drift from what the migrations create; a new table needs one line in ``TABLES``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    link_code_references_to_git,
    with_source_code_references,
)
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from fullbay_dagster.warehouse import schema

GROUP = "fullbay"
OWNERS = ["team:data-engineering"]
TAGS = {"source": "fullbay", "domain": "invoices"}
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = PACKAGE_ROOT / "warehouse" / "schema.py"


@dataclass(frozen=True)
class TableAsset:
    table: Table
    description: str


# asset name -> the table it is and what it holds. Add a table here and give it a
# producer in assets.py (an AssetSpec in the multi-asset that writes it).
TABLES: dict[str, TableAsset] = {
    "raw_work_orders": TableAsset(
        schema.raw_work_orders,
        "Every Fullbay invoice of the day, untouched JSON plus a content hash. "
        "Invoices that vanish from a day's answer are marked deleted.",
    ),
    "work_orders": TableAsset(
        schema.work_orders,
        "Normalised work orders, one row per invoice: exact decimals, timestamps in FULLBAY_TIMEZONE.",
    ),
    "work_order_lines": TableAsset(
        schema.work_order_lines,
        "Part, labor and misc lines of each work order, summable per invoice.",
    ),
    "quarantine": TableAsset(
        schema.quarantine,
        "Records of the day that could not be stored or normalised, with the reason and the record's text.",
    ),
    "field_issues": TableAsset(
        schema.field_issues,
        "One row per field of a live invoice that did not parse into its column's type: the column is "
        "NULL, the raw JSON keeps the value, and this row says where (path with array positions), what "
        "was expected and what came.",
    ),
    "schema_fields": TableAsset(
        schema.schema_fields,
        "Every field path the API has sent (array positions folded to []), the JSON types seen with "
        "counts, first and last seen, and the column the project maps it to: what the account really sends.",
    ),
    "ingestion_metadata": TableAsset(
        schema.ingestion_metadata,
        "The run log: one row per (run, endpoint, day) with counts, timings and status; failures too. "
        "This asset finishes invoices' rows; the other endpoints' steps finish their own.",
    ),
}


def backend_kind(env: dict[str, str] | None = None) -> str:
    """``sqlite`` for the local demo's warehouse, ``postgres`` otherwise (DATABASE_URL or DB_*)."""
    url = (env if env is not None else os.environ).get("DATABASE_URL", "")
    return "sqlite" if url.startswith("sqlite") else "postgres"


def column_schema(table: Table) -> TableSchema:
    """The table's columns as PostgreSQL declares them, with comments and constraints."""
    dialect = postgresql.dialect()
    return TableSchema(
        columns=[
            TableColumn(
                name=column.name,
                type=column.type.compile(dialect=dialect),
                description=column.comment,
                constraints=TableColumnConstraints(
                    nullable=bool(column.nullable),
                    unique=bool(column.primary_key or column.unique),
                    other=["primary key"] if column.primary_key else [],
                ),
            )
            for column in table.columns
        ]
    )


def _schema_line(table: Table) -> int:
    """Line of ``warehouse/schema.py`` where the table is declared."""
    text = SCHEMA_FILE.read_text()
    match = re.search(rf'^\s*"{re.escape(table.name)}",$', text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def table_metadata(name: str) -> dict[str, Any]:
    entry = TABLES[name]
    with warnings.catch_warnings():
        # Code references are beta in 1.13; they are Dagster's way to link an asset to its source.
        warnings.simplefilter("ignore", BetaWarning)
        return _table_metadata(entry)


def _table_metadata(entry: TableAsset) -> dict[str, Any]:
    return {
        "dagster/table_name": entry.table.name,
        "dagster/column_schema": MetadataValue.table_schema(column_schema(entry.table)),
        "dagster/code_references": CodeReferencesMetadataValue(
            code_references=[
                LocalFileCodeReference(
                    file_path=str(SCHEMA_FILE), line_number=_schema_line(entry.table), label="table definition"
                )
            ]
        ),
    }


def table_spec_kwargs(name: str) -> dict[str, Any]:
    """What every table asset carries: description, metadata, kinds, owners, tags, group."""
    return {
        "description": f"`{TABLES[name].table.name}`: {TABLES[name].description}",
        "metadata": table_metadata(name),
        "kinds": {backend_kind(), "table"},
        "owners": OWNERS,
        "tags": TAGS,
        "group_name": GROUP,
    }


def linked_to_repository(assets: list[AssetsDefinition]) -> list[AssetsDefinition]:
    """Add each asset's Python source as a code reference; link the references to the
    repository's web view when FULLBAY_GIT_URL is set (e.g. https://github.com/org/repo)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return _linked(assets)


def _linked(assets: list[AssetsDefinition]) -> list[AssetsDefinition]:
    # Both return what they were given, with references added: AssetsDefinitions here.
    with_source = cast(list[AssetsDefinition], with_source_code_references(assets))
    git_url = os.environ.get("FULLBAY_GIT_URL")
    if not git_url:
        return with_source
    return cast(
        list[AssetsDefinition],
        link_code_references_to_git(
            with_source,
            git_url=git_url,
            git_branch=os.environ.get("FULLBAY_GIT_BRANCH", "main"),
            file_path_mapping=AnchorBasedFilePathMapping(
                local_file_anchor=PACKAGE_ROOT, file_anchor_path_in_repository=PACKAGE_ROOT.name
            ),
        ),
    )
