//! `/v1/openapi.json`: an OpenAPI 3.0 document of the JSON API, written by hand beside the
//! handlers in [`super::json`] (a test checks it names every path the router serves).

use serde_json::{Value as Json, json};

/// The paths the document describes, as the router serves them.
#[cfg(test)]
pub const PATHS: [&str; 6] =
    ["/v1/online", "/v1/views", "/v1/views/{name}", "/v1/services", "/v1/openapi.json", "/healthz"];

/// The responses every endpoint may give besides its success.
fn errors(codes: &[&str]) -> serde_json::Map<String, Json> {
    let mut out = serde_json::Map::new();
    for code in codes {
        let description = match *code {
            "400" => "The request is malformed (INVALID_ARGUMENT); the message names the field",
            "401" => "No bearer token, or one the server does not accept (UNAUTHENTICATED)",
            "403" => "The token's role is too low (PERMISSION_DENIED)",
            "404" => "An unknown view, service or feature (NOT_FOUND)",
            "409" => "The server cannot do it now, e.g. nothing is applied yet (FAILED_PRECONDITION)",
            "413" => "The body is over the size limit (RESOURCE_EXHAUSTED)",
            "415" => "The body is not sent as application/json",
            "429" => "A limit was reached: entities × features, requests at once (RESOURCE_EXHAUSTED)",
            "503" => "A store cannot answer now (UNAVAILABLE)",
            "504" => "The request took longer than the server's deadline (DEADLINE_EXCEEDED)",
            _ => "A bug in Quiver or corrupt stored data (INTERNAL, DATA_LOSS)",
        };
        out.insert(
            (*code).to_string(),
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
    }
    out
}

fn ok(description: &str, schema: &str) -> Json {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn responses(success: Json, codes: &[&str]) -> Json {
    let mut all = errors(codes);
    all.insert("200".into(), success);
    Json::Object(all)
}

/// The document.
pub fn document() -> Json {
    const READ: [&str; 6] = ["401", "403", "409", "429", "500", "503"];
    let online_errors: Vec<&str> = ["400", "404", "413", "415", "504"].into_iter().chain(READ).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Quiver HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Online feature values and the registry objects of the version being served. \
                When the server has tokens and `server.reads_need_token`, send `authorization: Bearer <token>` \
                with a reader token or above."
        },
        "servers": [{"url": "/"}],
        "security": [{}, {"bearer": []}],
        "paths": {
            "/v1/online": {"post": {
                "operationId": "getOnlineFeatures",
                "summary": "The latest values of features for entities, as `quiver online` prints them",
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/OnlineRequest"}
                }}},
                "responses": responses(ok("One result per entity row, in request order", "OnlineResponse"), &online_errors)
            }},
            "/v1/views": {"get": {
                "operationId": "listFeatureViews",
                "summary": "Every feature view of the registry version served",
                "responses": responses(ok("The feature views", "FeatureViews"), &READ)
            }},
            "/v1/views/{name}": {"get": {
                "operationId": "getFeatureView",
                "summary": "One feature view, with its join keys",
                "parameters": [{
                    "name": "name", "in": "path", "required": true,
                    "schema": {"type": "string", "maxLength": 256}
                }],
                "responses": responses(ok("The feature view", "FeatureViewAnswer"),
                    &["404", "401", "403", "409", "429", "500", "503"])
            }},
            "/v1/services": {"get": {
                "operationId": "listFeatureServices",
                "summary": "Every feature service, with the features it resolves to",
                "responses": responses(ok("The feature services", "FeatureServices"), &READ)
            }},
            "/v1/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [{}],
                "responses": {"200": {"description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Whether the server is serving",
                "security": [{}],
                "responses": {"200": {"description": "Serving",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"status": {"type": "string", "enum": ["serving"]}},
                        "required": ["status"]
                    }}}}}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas()
        }
    })
}

fn schemas() -> Json {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "The gRPC status code name, e.g. NOT_FOUND"},
                    "message": {"type": "string", "description": "What is wrong and what to do"}
                }
            }}
        },
        "OnlineRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["entities"],
            "description": "Give `features` or `feature_service`, not both. Every `entities` list has one \
                value per entity row (all of one length), under the join keys of the views asked for.",
            "oneOf": [
                {"required": ["features"], "not": {"required": ["feature_service"]}},
                {"required": ["feature_service"], "not": {"required": ["features"]}}
            ],
            "properties": {
                "features": {
                    "type": "array", "minItems": 1, "maxItems": 10000,
                    "items": {"type": "string", "minLength": 1, "maxLength": 256},
                    "description": "`view:feature`, or `view` for all its features"
                },
                "feature_service": {"type": "string", "minLength": 1, "maxLength": 256},
                "entities": {
                    "type": "object", "minProperties": 1, "maxProperties": 32,
                    "description": "Join key name -> one value per entity row (all lists of one length)",
                    "additionalProperties": {
                        "type": "array", "minItems": 1, "maxItems": 10000,
                        "items": {"oneOf": [{"type": "integer", "format": "int64"}, {"type": "string", "maxLength": 4096}]}
                    }
                },
                "at": {
                    "type": "string",
                    "description": "The time to judge each view's ttl against (default: now): RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a date"
                }
            }
        },
        "OnlineResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": {
                "type": "object",
                "required": ["entity", "features"],
                "properties": {
                    "entity": {"type": "object", "additionalProperties": true},
                    "features": {
                        "type": "object",
                        "description": "`view:feature` -> its value",
                        "additionalProperties": {"$ref": "#/components/schemas/FeatureValue"}
                    }
                }
            }}}
        },
        "FeatureValue": {
            "type": "object",
            "required": ["value", "status", "event_timestamp"],
            "properties": {
                "value": {"nullable": true, "description": "Null unless PRESENT"},
                "status": {"type": "string", "enum": ["PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]},
                "event_timestamp": {"type": "string", "nullable": true, "description": "RFC 3339, UTC; null when NOT_FOUND"}
            }
        },
        "FeatureView": {
            "type": "object",
            "required": ["name", "entities", "source", "features"],
            "additionalProperties": true,
            "properties": {
                "name": {"type": "string"},
                "entities": {"type": "array", "items": {"type": "string"}},
                "source": {"type": "string"},
                "features": {"type": "array", "items": {"$ref": "#/components/schemas/Field"}}
            }
        },
        "Field": {
            "type": "object",
            "required": ["name", "dtype"],
            "additionalProperties": true,
            "properties": {"name": {"type": "string"}, "dtype": {"type": "string"}, "description": {"type": "string"}}
        },
        "FeatureViews": {
            "type": "object",
            "required": ["registry_version", "feature_views"],
            "properties": {
                "registry_version": {"type": "integer"},
                "feature_views": {"type": "array", "items": {"$ref": "#/components/schemas/FeatureView"}}
            }
        },
        "FeatureViewAnswer": {
            "type": "object",
            "required": ["registry_version", "feature_view", "join_keys"],
            "properties": {
                "registry_version": {"type": "integer"},
                "feature_view": {"$ref": "#/components/schemas/FeatureView"},
                "join_keys": {"type": "array", "items": {"$ref": "#/components/schemas/Field"}}
            }
        },
        "FeatureServices": {
            "type": "object",
            "required": ["registry_version", "feature_services"],
            "properties": {
                "registry_version": {"type": "integer"},
                "feature_services": {"type": "array", "items": {
                    "type": "object",
                    "required": ["name", "features", "resolved_features"],
                    "additionalProperties": true,
                    "properties": {
                        "name": {"type": "string"},
                        "features": {"type": "array", "items": {"type": "string"}},
                        "resolved_features": {"type": "array", "items": {"type": "string"}}
                    }
                }}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_api_path_and_each_is_routed() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), PATHS.len());
        for path in PATHS {
            let operations = paths[path].as_object().unwrap();
            let (method, _) = operations.iter().next().unwrap();
            let method = http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path.replace("{name}", "driver_stats");
            assert!(super::super::Route::find(&method, &concrete, false).is_ok(), "{path}");
        }
        // Every reference points at a schema the document defines.
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "{name}");
        }
    }
}
