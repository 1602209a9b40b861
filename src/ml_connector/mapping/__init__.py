"""Pure mapping core: no I/O; IFS records in, Jira issue drafts and IFS updates out."""

from ml_connector.mapping.issue import (
    IDENTITY_PROPERTY,
    FieldTarget,
    IfsUpdate,
    IssueDraft,
    MappingContext,
    build_issue_fields,
    canonical_json,
    clean_text,
    identity_label,
    map_issue,
    map_status,
    mapping_problems,
    stable_hash,
    text_hash,
)

__all__ = [
    "IDENTITY_PROPERTY",
    "FieldTarget",
    "IfsUpdate",
    "IssueDraft",
    "MappingContext",
    "build_issue_fields",
    "canonical_json",
    "clean_text",
    "identity_label",
    "map_issue",
    "map_status",
    "mapping_problems",
    "stable_hash",
    "text_hash",
]
