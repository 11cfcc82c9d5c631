"""The small HTML pages a person sees at the end of a link (start links, Zoom connect).

One template and one rendering function: the pages differ only in their words.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

# Nothing behind such a link may be cached, indexed or leaked through a Referer header.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


def mark(text: str) -> str:
    return text  # marks a string for translation; translated when the page renders


@dataclass(frozen=True)
class Notice:
    status: int
    outcome: str  # for logs and metrics
    title: str
    message: str
    advice: str


_env = Environment(loader=PackageLoader("web", "templates"), autoescape=select_autoescape(["html"]),
                   extensions=["jinja2.ext.i18n"])
_translations = gettext.NullTranslations()
_env.install_gettext_translations(_translations, newstyle=True)  # type: ignore[attr-defined]


def render_notice(notice: Notice, footer: str) -> HTMLResponse:
    _ = _translations.gettext
    html = _env.get_template("notice.html").render(
        title=_(notice.title), message=_(notice.message), advice=_(notice.advice), footer=_(footer))
    return HTMLResponse(html, status_code=notice.status, headers=PRIVATE_HEADERS)
