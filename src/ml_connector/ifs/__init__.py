"""IFS Cloud client: IAM client-credentials auth, OData query building, paging, entity reads/writes with ETags,
and discovery. Import from here; the submodules are implementation detail."""

from ml_connector.ifs.auth import TokenProvider
from ml_connector.ifs.client import IfsClient, Page
from ml_connector.ifs.etag import EtagInfo, decode_etag, encode_etag
from ml_connector.ifs.metadata import (
    Action,
    EntitySetInfo,
    EntityType,
    EnumType,
    Property,
    ServiceMetadata,
    parse_metadata,
)
from ml_connector.ifs.odata import (
    EntitySetRef,
    EnumLiteral,
    Expr,
    F,
    OrderKey,
    Raw,
    and_,
    entity_path,
    key_match,
    key_predicate,
    keyset_after,
    literal,
    or_,
    quote_string,
)

__all__ = [
    "Action",
    "EntitySetInfo",
    "EntitySetRef",
    "EntityType",
    "EnumLiteral",
    "EnumType",
    "EtagInfo",
    "Expr",
    "F",
    "IfsClient",
    "OrderKey",
    "Page",
    "Property",
    "Raw",
    "ServiceMetadata",
    "TokenProvider",
    "and_",
    "decode_etag",
    "encode_etag",
    "entity_path",
    "key_match",
    "key_predicate",
    "keyset_after",
    "literal",
    "or_",
    "parse_metadata",
    "quote_string",
]
