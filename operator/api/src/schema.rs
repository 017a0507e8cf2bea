//! Schema helpers shared by the API types: DNS-label names, ports and the conditions list-map.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema of a name that becomes part of Kubernetes object names: a DNS-1123 label.
pub fn dns_label(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 40,
        "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    })
}

/// Schema of a TCP port number.
pub fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer", "format": "int32", "minimum": 1, "maximum": 65535 })
}

/// Schema of an optional TCP port number.
pub fn optional_port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer", "format": "int32", "minimum": 1, "maximum": 65535, "nullable": true,
    })
}

/// Schema of `status.conditions`: standard `metav1.Condition` items in a list-map keyed by type,
/// so server-side apply merges conditions one by one.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>();
    json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}
