"""A model's JSON with some fields spliced in already encoded.

The hub encodes each event once for its log; the stored reply, the reply sent and the outcome
inside it carry the same JSON again. Encoding it once and splicing the text in, instead of
encoding the same models three or four times, is most of what a ticket costs in pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel


def dump_spliced(instance: BaseModel, encoded: dict[str, str]) -> str:
    """``instance`` as JSON, each field named in ``encoded`` holding that JSON text instead.

    ``instance`` holds an empty placeholder (``None``, ``[]``) in those fields, and no field before
    one of them may hold a model with a field of the same name: then the first ``"name":<empty>``
    in the JSON is the field itself, since a quote inside a JSON string is always escaped.
    """
    text = instance.model_dump_json()
    for name, value in encoded.items():
        empty = getattr(instance, name)
        if empty is None:
            placeholder = "null"
        elif empty == []:
            placeholder = "[]"
        else:
            raise ValueError(f"{type(instance).__name__}.{name} holds no empty placeholder to splice into")
        text = text.replace(f'"{name}":{placeholder}', f'"{name}":{value}', 1)
    return text
