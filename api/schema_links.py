"""OpenAPI links for stateful testing (Schemathesis) and for readers: what to do with an object
just created. Derived from the document itself, so a new create operation gets its links without
anyone remembering to add them, and no link ever points at an operation that does not exist.

A create is a POST on a collection path answering 201 with an `id`; it links to every operation
on the paths below that collection which take the new id (read, update, delete and actions such
as accept or notes), passing any other path parameters through from the request.
"""

import re

METHODS = ("get", "put", "patch", "post", "delete")
PARAMETER = re.compile(r"{([^}]+)}")


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _created_has_id(operation: dict, components: dict) -> bool:
    content = operation.get("responses", {}).get("201", {}).get("content", {})
    for media in content.values():
        schema = _resolve(media.get("schema", {}), components)
        if "id" in schema.get("properties", {}):
            return True
    return False


def add_links(result, generator, request, public):
    paths = result.get("paths", {})
    components = result.get("components", {}).get("schemas", {})
    for collection, item in paths.items():
        create = item.get("post")
        if create is None or not _created_has_id(create, components):
            continue
        prefix = collection.rstrip("/") + "/{"
        source_parameters = set(PARAMETER.findall(collection))
        links = {}
        for target, target_item in paths.items():
            if not target.startswith(prefix):
                continue
            new_parameter = PARAMETER.match(target[len(prefix) - 1 :]).group(1)
            expected = set(PARAMETER.findall(target))
            if expected - source_parameters - {new_parameter}:
                continue  # needs an id this create does not give (a deeper nested object)
            parameters = {new_parameter: "$response.body#/id"}
            parameters.update({name: f"$request.path.{name}" for name in source_parameters})
            for method in METHODS:
                operation = target_item.get(method)
                if operation is None:
                    continue
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "description": f"{operation.get('summary', '')} (the object just created)",
                }
        if links:
            create["responses"]["201"]["links"] = links
    return result
