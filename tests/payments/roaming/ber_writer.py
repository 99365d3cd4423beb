"""Editing parsed BER trees for the tests: a sample file can be changed element by element and
re-encoded (`payments.roaming.ber_writer.encode`), so the importer's rules are checked one at a
time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments.roaming.ber import Element, TagClass
from payments.roaming.ber_writer import encode

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["constructed", "edit", "encode", "primitive"]


def primitive(tag: int, contents: bytes) -> Element:
    return Element(TagClass.APPLICATION, tag, 0, 0, False, contents, ())


def constructed(tag: int, *children: Element) -> Element:
    return Element(TagClass.APPLICATION, tag, 0, 0, True, b"", children)


def edit(
    element: Element, path: tuple[int, ...], change: Callable[[Element], Element | None]
) -> Element:
    """A copy of `element` with the descendant at `path` (tag numbers, first match at each
    level) replaced by `change(it)`, or removed when that returns None."""
    if not path:
        raise ValueError("empty path")
    children: list[Element] = []
    done = False
    for child in element.children:
        if not done and child.tag == path[0]:
            done = True
            if len(path) == 1:
                replaced = change(child)
                if replaced is not None:
                    children.append(replaced)
            else:
                children.append(edit(child, path[1:], change))
        else:
            children.append(child)
    if not done:
        raise KeyError(path)
    return element._replace(children=tuple(children))
