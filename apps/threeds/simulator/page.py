"""The ACS's challenge page as a browser sees it: its forms and its text."""

from __future__ import annotations

from html.parser import HTMLParser


class ChallengePage(HTMLParser):
    """Forms (action, method, hidden fields, other inputs, named buttons), the title, the
    message paragraph (`p.msg`) and the readable text of a page."""

    def __init__(self, text: str, *, status_code: int = 200, response=None):
        super().__init__(convert_charrefs=True)
        self.response = response
        self.status_code = status_code
        self.forms: list[dict] = []
        self.texts: list[str] = []
        self.title = ""
        self.message = ""
        self._in = None
        self.feed(text)

    @classmethod
    def of(cls, response) -> ChallengePage:
        """From a transport `Reply` (or anything with `text` and `status_code`)."""
        return cls(response.text, status_code=response.status_code, response=response)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "hidden": {}, "inputs": [], "buttons": []})
        elif tag == "input" and self.forms and attrs.get("name"):
            if attrs.get("type") == "hidden":
                self.forms[-1]["hidden"][attrs["name"]] = attrs.get("value") or ""
            else:
                self.forms[-1]["inputs"].append(attrs["name"])
        elif tag == "button" and self.forms and attrs.get("name"):
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value") or ""))
        elif tag == "h1":
            self._in = "title"
        elif tag == "p" and "msg" in (attrs.get("class") or "").split():
            self._in = "message"

    def handle_endtag(self, tag):
        if tag in ("h1", "p"):
            self._in = None

    def handle_data(self, data):
        text = data.strip()
        if not text:
            return
        self.texts.append(text)
        if self._in == "title":
            self.title += text
        elif self._in == "message":
            self.message += text

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def form_with(self, name: str) -> dict | None:
        return next((f for f in self.forms if name in f["hidden"] or name in f["inputs"]), None)

    @property
    def is_final(self) -> bool:
        """The last page: its form hands the final CRes to the notificationURL."""
        return self.form_with("cres") is not None
