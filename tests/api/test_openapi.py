from openapi_spec_validator import validate

from mobimart.app import create_app


def test_openapi_document_is_valid_and_documents_problems() -> None:
    spec = create_app().openapi()
    validate(spec)
    assert spec["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "code",
    ]
    for path, item in spec["paths"].items():
        assert path.startswith("/api/v1/")
        for operation in item.values():
            content = operation["responses"]["422"]["content"]
            assert list(content) == ["application/problem+json"]
