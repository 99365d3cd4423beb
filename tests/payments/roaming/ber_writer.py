"""A small BER writer for the tests (definite, minimal lengths): re-encodes a parsed tree, so a
sample file can be edited element by element and the importer's rules checked one at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments.roaming.ber import Element, TagClass

if TYPE_CHECKING:
    from collections.abc import Callable


def identifier(tag_class: TagClass, constructed: bool, tag: int) -> bytes:
    first = (tag_class << 6) | (0x20 if constructed else 0)
    if tag < 0x1F:
        return bytes([first | tag])
    groups = [tag & 0x7F]
    tag >>= 7
    while tag:
        groups.append(0x80 | (tag & 0x7F))
        tag >>= 7
    return bytes([first | 0x1F, *reversed(groups)])


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode(element: Element) -> bytes:
    body = (
        b"".join(encode(c) for c in element.children) if element.constructed else element.contents
    )
    return (
        identifier(element.tag_class, element.constructed, element.tag) + length(len(body)) + body
    )


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
