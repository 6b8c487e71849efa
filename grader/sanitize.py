"""Student HTML made inert before anyone opens a graded notebook (stored XSS).

A student controls every byte of a submission, and nbconvert copies raw HTML
through: a written answer holding ``<script>`` or ``<img src=x onerror=...>``,
an output made by ``display(HTML(...))``, an ``<iframe srcdoc=...>`` all ran
in the feedback HTML (``nbgrader generate_feedback``) and in the formgrader's
submission view (``make formgrader``), where a script could call the Jupyter
server's API as the instructor. Three layers, each enough on its own for the
payloads tests/test_xss.py tries (the third for feedback pages only: the
formgrader is a live page of the Jupyter server, guarded by the first two):

1. ``sanitize_notebook(path)`` rewrites a graded notebook in place (called by
   grader/grade/batch.py on ``work/autograded/<s>/<a>/<a>.ipynb`` before it is copied
   to the course folder; ``make formgrader`` runs it again on the whole
   ``autograded/`` folder, for folders graded before it existed). Each cell is
   rendered exactly as nbconvert renders it (nbconvert's own mistune renderer
   with its maths rules; nothing is executed or imported) and the resulting
   HTML is parsed with the HTML5 algorithm browsers use (html5lib, through
   bleach). A cell is rewritten only when that parse holds something outside
   the allow-list below, so honest cells, and with them nbgrader's checksums
   and the instructor's marks (keyed by answer text), stay byte for byte.
   A rewritten markdown cell keeps its markdown and LaTeX: only the offending
   raw HTML tags (cleaned by bleach, an allow-list sanitizer) and unsafe link
   targets are replaced; if the rendered result is still not clean, the cell
   becomes its rendered HTML cleaned by bleach (maths text included, so
   MathJax still typesets it), and as a last resort a fenced code block of
   the original text. Outputs: ``text/html`` is cleaned, ``text/markdown`` is
   treated like a markdown cell, ``image/svg+xml`` with active content (script,
   event handlers, foreignObject, ``javascript:`` links; parsed with
   defusedxml) is dropped, JavaScript and any other rich type that would run
   code is dropped; text, LaTeX, PNG/JPEG/GIF figures and inert widget views
   are kept. HTML values in saved widget state are cleaned like output HTML.
2. ``SanitizePreprocessor``: the same pass at render time, on whatever
   nbconvert renders for nbgrader (feedback, the formgrader's submission view;
   set as ``HTMLExporter.preprocessors`` in grader/nbgrader_config.py), even
   for a notebook that step 1 never saw.
3. ``harden_feedback(folder)`` puts a Content-Security-Policy ``<meta>`` first
   in the ``<head>`` of every feedback page: no inline script except the ones
   the feedback template itself emits (sha256 hashes computed from a render of
   the template with an empty notebook, never from the student's page), the
   template's MathJax (its script folder, and ``'unsafe-eval'`` because
   MathJax 2 evaluates the ``text/x-mathjax-config`` block), images only from
   ``data:``, no fetch/XHR, frame, object, form target or ``<base>``.

Allow-list (rendered HTML): the ordinary text, list, table and figure tags;
``class``/``id``/``title`` everywhere, ``style`` checked declaration by
declaration (tinycss2: a short list of properties, no ``url()`` or other
functions that load things); ``href`` with http(s), mailto, relative or
``#`` targets; ``<img src>`` with http(s), relative or a raster ``data:image``;
no ``on*`` attribute, no script, style, iframe, object, embed, form, svg,
math, base or meta element. HTML comments are kept (they are inert, and the
course's own notebooks use them).

Every rewrite is reported as a note, e.g. ``cell proof-kl (markdown): removed
<script>, onerror=``.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import os
import re
import shutil
import stat
from pathlib import Path
from urllib.parse import unquote

import bleach
import nbformat
import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES
from nbconvert.preprocessors import Preprocessor

# ----------------------------------------------------------------- the allow-list

ALLOWED_TAGS = frozenset("""
    a abbr acronym b bdi bdo big blockquote br caption center cite code col colgroup dd del details dfn div
    dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i img input ins kbd li mark ol p pre q rp rt ruby s samp
    small span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr
""".split())
# Elements dropped with everything inside them (their text would be noise or
# worse once the tags are gone): script and style bodies, embedded documents,
# foreign (SVG/MathML) content, raw-text elements that swallow the page.
DROP_WITH_CONTENT = frozenset("""
    script style template iframe frame frameset object embed applet noscript noembed noframes xmp plaintext
    textarea title svg math select option head meta link base
""".split())
GLOBAL_ATTRIBUTES = frozenset({"class", "id", "title", "lang", "dir", "align", "style"})
TAG_ATTRIBUTES = {
    "a": {"href", "target", "rel"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "scope"},
    "th": {"colspan", "rowspan", "valign", "scope"},
    "table": {"border", "cellpadding", "cellspacing", "width", "summary"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "details": {"open"},
    "input": {"type", "checked", "disabled"},  # the task-list checkboxes nbconvert's markdown renders
}
URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
# data: images as <img src> only, and raster ones (an SVG image cannot run
# script either, but nothing honest needs one here)
RASTER_DATA = re.compile(r"data:image/(png|jpe?g|gif|webp|bmp)[;,]", re.I)
# CSS: bleach's property list plus box properties, without anything that
# moves an element over the page (position, z-index, transform)
CSS_PROPERTIES = frozenset(ALLOWED_CSS_PROPERTIES) | frozenset("""
    margin margin-top margin-right margin-bottom margin-left padding padding-top padding-right padding-bottom
    padding-left border border-top border-right border-bottom border-left border-width border-style
    border-radius border-spacing max-width min-width max-height min-height list-style-type text-transform
    font-variant-numeric caption-side empty-cells table-layout word-wrap overflow-wrap word-break
""".split())
CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc"})

# Output types a browser shows without running anything; others are dropped
# unless handled below (text/html, text/markdown, image/svg+xml, widget views).
INERT_OUTPUTS = frozenset({"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif", "image/bmp",
                           "image/webp", "application/json", "application/pdf"})
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# raw cells nbconvert's HTML templates copy into the page
RAW_HTML_MIMETYPES = frozenset({"", "text/html"})

CSP_MARKER = 'id="grader-csp"'


# ------------------------------------------------------------------ URL and CSS checks

def _scheme(url: str) -> str | None:
    """The scheme a browser would see: the URL parser drops ASCII tab and
    newlines anywhere and leading C0 controls and spaces."""
    cleaned = re.sub(r"[\t\n\r]", "", url).lstrip("".join(map(chr, range(0x21))))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", cleaned)
    return match.group(1).lower() if match else None


def url_allowed(tag: str, attribute: str, url: str) -> bool:
    scheme = _scheme(url)
    if tag == "img" and attribute == "src":
        if scheme == "data":
            return bool(RASTER_DATA.match(re.sub(r"[\t\n\r]", "", url).lstrip()))
        return scheme is None or scheme in IMAGE_SCHEMES
    return scheme is None or scheme in LINK_SCHEMES


def _css_value_safe(tokens) -> bool:
    for token in tokens:
        if token.type == "url":
            return False
        if token.type == "function":
            if token.lower_name not in CSS_FUNCTIONS or not _css_value_safe(token.arguments):
                return False
        elif token.type in ("() block", "[] block", "{} block"):
            if not _css_value_safe(token.content):
                return False
        elif token.type == "ident" and token.lower_value in ("expression", "behavior", "javascript"):
            return False
    return True


def clean_css(style: str) -> str:
    """The declarations of a style attribute that are on the allow-list."""
    kept = []
    for item in tinycss2.parse_blocks_contents(style, skip_comments=True, skip_whitespace=True):
        if item.type == "declaration" and item.lower_name in CSS_PROPERTIES and _css_value_safe(item.value):
            kept.append(f"{item.lower_name}: {tinycss2.serialize(item.value).strip()}"
                        f"{' !important' if item.important else ''};")
    return " ".join(kept)


def _css_problems(style: str) -> list:
    problems = []
    for item in tinycss2.parse_blocks_contents(style, skip_comments=True, skip_whitespace=True):
        if item.type != "declaration":
            problems.append("style: unparsable CSS")
        elif item.lower_name not in CSS_PROPERTIES:
            problems.append(f"style: {item.lower_name}")
        elif not _css_value_safe(item.value):
            problems.append(f"style: url()/function in {item.lower_name}")
    return problems


class _CssSanitizer:
    """What bleach calls for a ``style`` attribute (bleach's own CSSSanitizer
    keeps any value of an allowed property, ``cursor: url(...)`` included)."""

    def sanitize_css(self, style: str) -> str:
        return clean_css(style)


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    name = name.lower()
    if name not in GLOBAL_ATTRIBUTES and name not in TAG_ATTRIBUTES.get(tag, ()):
        return False
    if name in URL_ATTRIBUTES and not url_allowed(tag, name, value):
        return False
    if tag == "input" and name == "type" and value.strip().lower() != "checkbox":
        return False
    return True


# ------------------------------------------------------------------ HTML: check and clean

def _parse(fragment: str, consume_entities: bool = True):
    parser = html5lib_shim.BleachHTMLParser(tags=None, strip=False, consume_entities=consume_entities,
                                            namespaceHTMLElements=False)
    return parser.parseFragment(fragment)


def html_problems(fragment: str) -> list:
    """What in ``fragment`` is off the allow-list, as a browser parses it
    (HTML5 algorithm, entities decoded): ``['<script>', 'onerror=', ...]``."""
    problems = []
    for token in html5lib_shim.getTreeWalker("etree")(_parse(fragment)):
        if token["type"] not in ("StartTag", "EmptyTag"):
            continue
        tag = token["name"].lower()
        if token.get("namespace") not in (None, html5lib_shim.namespaces["html"]):
            problems.append(f"<{tag}> ({'SVG' if 'svg' in token['namespace'] else 'foreign'} content)")
            continue
        if tag not in ALLOWED_TAGS:
            problems.append(f"<{tag}>")
        elif tag == "input" and not any(name == "type" for _, name in token["data"]):
            problems.append("<input> that is not a checkbox")
        for (namespace, name), value in token["data"].items():
            name = (name or "").lower()
            if namespace is not None or name.startswith("on"):
                problems.append(f"{name}=")
            elif name == "style":
                problems.extend(_css_problems(value))
            elif name in URL_ATTRIBUTES and (name in GLOBAL_ATTRIBUTES or name in TAG_ATTRIBUTES.get(tag, ())):
                if not url_allowed(tag, name, value):
                    problems.append(f"{_scheme(value) or 'bad'}: URL in <{tag} {name}>")
            elif not _attribute_allowed(tag, name, value):
                problems.append(f"{name}= on <{tag}>")
    return problems


def _drop_with_content(fragment: str) -> str:
    """``fragment`` without the elements of DROP_WITH_CONTENT and what they hold."""
    dom = _parse(fragment, consume_entities=False)
    parents = {child: parent for parent in dom.iter() for child in parent}
    for element in list(dom.iter()):
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.rsplit("}", 1)[-1].lower() not in DROP_WITH_CONTENT or element not in parents:
            continue
        parent = parents[element]
        siblings = list(parent)
        index = siblings.index(element)
        if element.tail:  # the text after the element stays
            if index:
                siblings[index - 1].tail = (siblings[index - 1].tail or "") + element.tail
            else:
                parent.text = (parent.text or "") + element.tail
        parent.remove(element)
    serializer = html5lib_shim.BleachHTMLSerializer(
        quote_attr_values="always", omit_optional_tags=False, escape_lt_in_attrs=True,
        resolve_entities=False, sanitize=False, alphabetical_attributes=False)
    return serializer.render(html5lib_shim.getTreeWalker("etree")(dom))


_CLEANER = None


def clean_html(fragment: str) -> str:
    """``fragment`` reduced to the allow-list by bleach (disallowed tags
    stripped, their text kept, except DROP_WITH_CONTENT; comments kept)."""
    global _CLEANER
    if _CLEANER is None:
        _CLEANER = bleach.Cleaner(tags=ALLOWED_TAGS, attributes=_attribute_allowed,
                                  protocols=LINK_SCHEMES | {"data"}, strip=True, strip_comments=False,
                                  css_sanitizer=_CssSanitizer())
    cleaned = _CLEANER.clean(_drop_with_content(fragment))
    if html_problems(cleaned):  # never expected; still, nothing unchecked leaves this function
        return "<pre>" + html.escape(fragment) + "</pre>"
    return cleaned


# ------------------------------------------------------------------ markdown

def render_markdown(source: str, attachments: dict | None = None) -> str:
    """``source`` as nbconvert's HTMLExporter renders a markdown cell (same
    renderer, maths rules and plugins, raw HTML passed through)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def markdown_problems(source: str, attachments: dict | None = None) -> list:
    try:
        rendered = render_markdown(source, attachments)
    except Exception:  # noqa: BLE001 (a missing attachment: nbconvert would fail on the whole page)
        return ["unrenderable markdown"]
    return html_problems(rendered)


def _tokens(source: str) -> list:
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    def walk(tokens):
        for token in tokens:
            yield token
            yield from walk(token.get("children") or [])

    return list(walk(MarkdownWithMath(renderer=None)(source)))


def _rewrite_markdown(source: str) -> str | None:
    """``source`` with each unsafe raw-HTML tag replaced by its cleaned form
    and each unsafe link or image target by ``#``; None when a token cannot
    be found in the text (the caller falls back)."""
    out, cursor, urls = [], 0, set()
    for token in _tokens(source):
        kind = token.get("type")
        if kind in ("inline_html", "block_html"):
            raw = token.get("raw", "")
            if not html_problems(raw):
                continue
            at = source.find(raw, cursor)
            if at < 0:  # mistune ends a block that closes the cell with a newline of its own
                raw = raw.rstrip("\n")
                at = source.find(raw, cursor) if raw else -1
            if at < 0:
                return None
            out.append(source[cursor:at])
            out.append(_clean_tag(raw) if kind == "inline_html" else clean_html(raw))
            cursor = at + len(raw)
        elif kind in ("link", "image"):
            url = (token.get("attrs") or {}).get("url", "")
            if url.startswith("attachment:"):  # resolved to a data: URL when rendered, and checked there
                continue
            if not url_allowed("img" if kind == "image" else "a", "src" if kind == "image" else "href", url):
                urls.add(url)
    text = "".join(out) + source[cursor:]
    for url in sorted(urls, key=len, reverse=True):
        # mistune percent-encodes a target; the text holds it as written
        written = next((u for u in (url, unquote(url), html.unescape(unquote(url))) if u and u in text), None)
        if written is None:
            return None
        text = text.replace(written, "#")
    return text


def _clean_tag(raw: str) -> str:
    """One inline tag, cleaned: bleach closes an open tag it keeps (``<a>`` ->
    ``<a></a>``), which would leave the student's own closing tag dangling,
    so that added closing tag is taken off again."""
    cleaned = clean_html(raw)
    opened = re.match(r"<([A-Za-z][A-Za-z0-9-]*)", raw)
    if opened and "</" not in raw and cleaned.endswith(f"</{opened.group(1).lower()}>"):
        cleaned = cleaned[:-len(f"</{opened.group(1).lower()}>")]
    return cleaned


def _fenced(text: str) -> str:
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def clean_markdown(source: str, attachments: dict | None = None) -> str:
    """A version of ``source`` whose rendering passes the allow-list (returns
    ``source`` itself when it already does)."""
    if not markdown_problems(source, attachments):
        return source
    rewritten = _rewrite_markdown(source)
    if rewritten is not None and not markdown_problems(rewritten, attachments):
        return rewritten
    try:
        as_html = clean_html(render_markdown(source, attachments))
    except Exception:  # noqa: BLE001
        as_html = None
    # the rendered HTML, with no blank line (a blank line would end the HTML block and hand the rest back to markdown)
    if as_html is not None:
        as_html = "<div>\n" + re.sub(r"\n\s*\n", "\n", as_html).strip("\n") + "\n</div>"
        if not markdown_problems(as_html, attachments):
            return as_html
    return _fenced(source)


# ------------------------------------------------------------------ SVG

_SVG_ACTIVE = frozenset({"script", "foreignobject", "iframe", "object", "embed", "handler", "listener",
                         "animate", "set", "animatetransform", "animatemotion", "feimage"})
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?(?!#)|@import", re.I)


def svg_problems(svg: str) -> list:
    """Active content in an SVG document: script, event handlers,
    foreignObject, animations (they can rewrite a link), links and references
    to anything but its own elements or a raster ``data:`` image (what
    matplotlib writes). Parsed with defusedxml: no entity expansion, nothing
    fetched."""
    import defusedxml.ElementTree as ET

    try:
        root = ET.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg)
    except Exception:  # noqa: BLE001 (unparsable: a browser may still render part of it)
        return ["unparsable SVG"]
    problems = []
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""
        if tag in _SVG_ACTIVE:
            problems.append(f"<{tag}> in SVG")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                problems.append(f"{local}= in SVG")
            elif local == "href" and not (value.startswith("#") or RASTER_DATA.match(value.strip())):
                problems.append("a link out of the SVG")
            elif _EXTERNAL_URL.search(value):
                problems.append("url() out of the SVG")
        if tag == "style" and element.text and _EXTERNAL_URL.search(element.text):
            problems.append("url() out of the SVG")
    return problems


# ------------------------------------------------------------------ notebooks

def _label(cell, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {grade_id or '#' + str(index + 1)} ({cell.get('cell_type', '?')})"


def _removed(problems: list) -> str:
    seen = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return "removed " + ", ".join(seen[:8]) + (f" and {len(seen) - 8} more" if len(seen) > 8 else "")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _sanitize_output(output, where: str, notes: list) -> None:
    data = output.get("data")
    if isinstance(data, dict):
        for mime in list(data):
            value = data[mime]
            if mime == "text/html":
                problems = html_problems(_text(value))
                if problems:
                    data[mime] = clean_html(_text(value))
                    notes.append(f"{where}: text/html output: {_removed(problems)}")
            elif mime == "text/markdown":
                problems = markdown_problems(_text(value))
                if problems:
                    data[mime] = clean_markdown(_text(value))
                    notes.append(f"{where}: text/markdown output: {_removed(problems)}")
            elif mime == "image/svg+xml":
                problems = svg_problems(_text(value))
                if problems:
                    del data[mime]
                    notes.append(f"{where}: dropped an SVG output ({_removed(problems)})")
            elif mime == WIDGET_VIEW:
                if not _inert_widget_view(value):
                    del data[mime]
                    notes.append(f"{where}: dropped a malformed widget view")
            elif mime not in INERT_OUTPUTS:
                del data[mime]
                notes.append(f"{where}: dropped the {mime} output")
    metadata = output.get("metadata")
    if isinstance(metadata, dict) and "filenames" in metadata:  # nbconvert would use them as <img src>
        del metadata["filenames"]
        notes.append(f"{where}: dropped output file names")


def _inert_widget_view(value) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    return (isinstance(value, dict) and isinstance(value.get("model_id"), str)
            and re.fullmatch(r"[A-Za-z0-9_\-]+", value["model_id"]) is not None
            and set(value) <= {"model_id", "version_major", "version_minor"}
            and all(isinstance(value.get(k, 0), int) for k in ("version_major", "version_minor")))


def _sanitize_widget_state(nb, notes: list) -> None:
    """HTML strings in saved widget state (an HTML widget's value), which a
    widget manager would set as innerHTML."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
    models = state.get("state", {}) if isinstance(state, dict) else {}
    for model_id, model in (models.items() if isinstance(models, dict) else ()):
        values = model.get("state", {}) if isinstance(model, dict) else {}
        for key, value in (values.items() if isinstance(values, dict) else ()):
            if isinstance(value, str) and "<" in value:
                problems = html_problems(value)
                if problems:
                    values[key] = clean_html(value)
                    notes.append(f"widget {model_id} {key}: {_removed(problems)}")


def sanitize_node(nb) -> list:
    """Sanitize a notebook node in memory; returns the notes (empty when
    nothing was changed, and then nothing was)."""
    notes: list = []
    for index, cell in enumerate(nb.get("cells", [])):
        where = _label(cell, index)
        kind = cell.get("cell_type")
        source = _text(cell.get("source", ""))
        if kind == "markdown":
            attachments = cell.get("attachments") or {}
            problems = markdown_problems(source, attachments)
            if problems:
                cell["source"] = clean_markdown(source, attachments)
                notes.append(f"{where}: {_removed(problems)}")
        elif kind == "raw":
            mimetype = str(cell.get("metadata", {}).get("raw_mimetype", "") or "").lower()
            if mimetype in RAW_HTML_MIMETYPES:
                problems = html_problems(source)
                if problems:
                    cell["source"] = clean_html(source)
                    notes.append(f"{where}: {_removed(problems)}")
        elif kind == "code":
            outputs = cell.get("outputs", [])
            for number, output in enumerate(list(outputs)):
                _sanitize_output(output, f"{where} output {number + 1}", notes)
                if isinstance(output.get("data"), dict) and not output["data"]:  # nothing left to show
                    outputs.remove(output)
    _sanitize_widget_state(nb, notes)
    return notes


def sanitize_notebook(path: Path) -> list[str]:
    """Rewrite the notebook at ``path`` in place so that nothing in it can run
    script once nbconvert or the formgrader renders it. Returns notes on what
    was removed; empty when the notebook was already clean, in which case the
    file is not written at all (so it stays byte for byte)."""
    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    notes = sanitize_node(nb)
    if notes:
        tmp = path.with_name(f".{path.name}.sanitize.tmp")
        nbformat.write(nb, str(tmp))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    return notes


def sanitize_graded(autograded: Path) -> list[str]:
    """``sanitize_notebook`` on every ``<student>/<assignment>/*.ipynb`` under
    a course folder's ``autograded/`` (regular files only; links are skipped)."""
    notes = []
    autograded = Path(autograded)
    if not autograded.is_dir() or autograded.is_symlink():
        return notes
    for path in sorted(autograded.glob("*/*/*.ipynb")):
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode) and not any(
                p.is_symlink() for p in (path.parent, path.parent.parent))
        except OSError:
            continue
        if regular:
            try:
                notes += [f"{path.relative_to(autograded)}: {n}" for n in sanitize_notebook(path)]
            except Exception as error:  # noqa: BLE001 (unreadable: nbconvert cannot render it either)
                notes.append(f"{path.relative_to(autograded)}: not sanitized ({type(error).__name__}: {error})")
    return notes


class SanitizePreprocessor(Preprocessor):
    """nbconvert preprocessor: ``sanitize_node`` on the notebook being
    rendered (in memory; the file is not touched)."""

    def preprocess(self, nb, resources):
        notes = sanitize_node(nb)
        for note in notes:
            self.log.warning("student HTML made inert: %s", note)
        return nb, resources


# ------------------------------------------------------------------ feedback: Content-Security-Policy

def _course_config(course: Path | None):
    from traitlets.config.loader import PyFileConfigLoader

    from grader.nbgrader_api import CONFIG_FILE

    if course is not None and (Path(course) / "nbgrader_config.py").is_file():
        return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


def feedback_exporter(course: Path | None = None, render_time_pass: bool = True):
    """The exporter ``nbgrader generate_feedback`` uses (its converter's
    exporter class and configuration: the ``feedback`` template, its template
    folders, the course configuration), with its preprocessors except
    GetGrades, which reads the gradebook (``render_feedback`` stands in for
    it). ``render_time_pass=False`` leaves out SanitizePreprocessor, to show
    what the other layers stop on their own."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    config = _course_config(course)
    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    exporter = converter.exporter_class(parent=converter, config=converter.config)
    for preprocessor in converter.preprocessors:
        if preprocessor is not GetGrades:
            exporter.register_preprocessor(preprocessor)
    if not render_time_pass:
        exporter._preprocessors = [p for p in exporter._preprocessors if not isinstance(p, SanitizePreprocessor)]
    return exporter


def render_feedback(nb, course: Path | None = None, notebook: str = "feedback", render_time_pass: bool = True) -> str:
    """``nb`` rendered as generate_feedback renders an autograded notebook,
    with every graded cell at 0 points (GetGrades' part)."""
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and (meta.get("grade") or meta.get("task")):
            meta.setdefault("score", 0.0)
            meta.setdefault("comment", None)
    resources = {"metadata": {"name": notebook, "path": ""},
                 "nbgrader": {"notebook": notebook, "score": 0.0, "max_score": 0.0, "late_penalty": 0.0}}
    return feedback_exporter(course, render_time_pass).from_notebook_node(nb, resources=resources)[0]


_JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                       "application/ecmascript", "application/x-javascript"})


def _template_scripts(page: str) -> tuple[list, list, bool]:
    """(inline script texts, external script URLs, has a MathJax config block)."""
    inline, external, mathjax_config = [], [], False
    current, text = None, []
    for token in html5lib_shim.getTreeWalker("etree")(_parse(page)):
        if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "script":
            attrs = {name: value for (_, name), value in token["data"].items()}
            current, text = attrs, []
            if attrs.get("src"):
                external.append(attrs["src"])
            mathjax_config |= attrs.get("type", "").strip().lower().startswith("text/x-mathjax-config")
        elif token["type"] == "EndTag" and token["name"] == "script" and current is not None:
            kind = current.get("type", "").split(";")[0].strip().lower()
            if not current.get("src") and kind in _JS_TYPES:
                inline.append("".join(text))
            current = None
        elif current is not None and token["type"] in ("Characters", "SpaceCharacters"):
            text.append(token["data"])
    return inline, external, mathjax_config


def _script_source(url: str) -> str:
    """The CSP source for a template script and what it loads next: its
    folder, or for MathJax the library's folder (MathJax loads its config,
    input/output jax and fonts from there, and latest.js picks the version)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "'self'"
    segments = parts.path.split("/")
    for i, segment in enumerate(segments):
        if segment.lower() == "mathjax":
            return f"{parts.scheme}://{parts.netloc}{'/'.join(segments[:i + 1])}/"
    return f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/"


def feedback_policy(course: Path | None = None) -> str:
    """The Content-Security-Policy for feedback pages, from a render of the
    feedback template with an empty notebook (what the template alone emits)."""
    page = render_feedback(nbformat.v4.new_notebook(), course)
    inline, external, mathjax_config = _template_scripts(page)
    hashes = sorted({"'sha256-" + base64.b64encode(hashlib.sha256(t.encode("utf-8")).digest()).decode() + "'"
                     for t in inline})
    sources = sorted({_script_source(url) for url in external})
    script = hashes + sources + (["'unsafe-eval'"] if mathjax_config else [])
    directives = [
        "default-src 'none'",
        "script-src " + (" ".join(script) or "'none'"),
        "style-src 'unsafe-inline'" + "".join(" " + s for s in sources),
        "img-src data:",
        "font-src data:" + "".join(" " + s for s in sources),
        "connect-src 'none'", "frame-src 'none'", "child-src 'none'", "worker-src 'none'",
        "object-src 'none'", "media-src 'none'", "manifest-src 'none'", "form-action 'none'", "base-uri 'none'",
    ]
    return "; ".join(directives)


def csp_meta(policy: str) -> str:
    value = html.escape(policy, quote=False).replace('"', "&quot;")  # the policy's own quotes stay readable
    return f'<meta {CSP_MARKER} http-equiv="Content-Security-Policy" content="{value}">'


# The template's own <head> tag: the feedback template writes it before any
# student content, so the first one in the file is the template's.
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.I)
_OURS = re.compile(r"\s*<meta " + re.escape(CSP_MARKER) + r' http-equiv="Content-Security-Policy" content="[^"]*">')


def harden_page(text: str, meta: str) -> str:
    """``text`` with ``meta`` as the first thing in its <head> (replacing the
    one a previous run put there)."""
    head = _HEAD.search(text)
    if head is None:  # no head: a <meta> before anything else is parsed into the implied head
        start = 0
        if text.lstrip().lower().startswith("<!doctype"):
            start = text.index(">", text.lower().index("<!doctype")) + 1
        rest = text[start:]
        existing = _OURS.match(rest)
        return text[:start] + meta + (rest[existing.end():] if existing else rest)
    end = head.end()
    rest = text[end:]
    existing = _OURS.match(rest)
    if existing:
        rest = rest[existing.end():]
    return text[:end] + meta + rest


def harden_feedback(folder: Path) -> int:
    """Put the feedback Content-Security-Policy into every ``*.html`` under
    ``folder`` (regular files only; symbolic links, to files or folders, are
    never followed). Returns how many files carry it now. Idempotent."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return 0
    meta = csp_meta(feedback_policy(folder.parent))
    count = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in files:
            if not name.lower().endswith(".html"):
                continue
            path = os.path.join(root, name)
            try:
                fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue  # a link, or unreadable
            with os.fdopen(fd, "r+b") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    continue
                text = fh.read().decode("utf-8", errors="surrogateescape")
                hardened = harden_page(text, meta)
                if hardened != text:
                    fh.seek(0)
                    fh.write(hardened.encode("utf-8", errors="surrogateescape"))
                    fh.truncate()
            count += 1
    return count
