"""The case text (`report.txt`): a submission as the team reads it, in English.

The same record is written as `report.json` for tools; this is the one for people. Text from a
bundle is shown as written, but without the control sequences a terminal would act on.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from portal.formats import envelope, questionnaire, sizes
from portal.formats.fields import CHECKBOXES, RADIO, SELECT, TEXTAREA, Field
from portal.offline import replykeys

LANGUAGES = {
    "ar": "Arabic",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "ru": "Russian",
    "zh": "Chinese",
}
KIND_TITLES = {
    "report": "Report",
    "follow-up": "Follow-up from the submitter",
    "reply": "Reply from the team",
}
SEALERS = {
    "browser": "the submitter's browser (sealed before it left their computer)",
    "server": (
        "the portal's server (the submitter's browser ran no JavaScript, so the server "
        "sealed it on arrival, in memory)"
    ),
    "relay-tool": "the offline sealing tool (a relaying organisation, or the team for a reply)",
}
REPLY_FIELDS = (Field("message", TEXTAREA, "Message from the team"),)


def printable(text: str) -> str:
    """Text as written, but no terminal control sequences: controls other than LF and TAB go."""
    text = text.replace("\r\n", "\n")
    return "".join(
        "\ufffd" if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text
    )


def one_line(text: str) -> str:
    return printable(text).replace("\n", " ").replace("\t", " ")


def language_name(locale: str) -> str:
    """The English name of a language code, with the code."""
    name = LANGUAGES.get(locale.split("-")[0].lower())
    return f"{name} ({one_line(locale)})" if name else one_line(locale)


def _fields_for(kind: str) -> list[tuple[str, tuple[Field, ...]]]:
    if kind == "report":
        return [(section.title, section.fields) for section in questionnaire.REPORT_SECTIONS]
    if kind == "follow-up":
        return [("New information", questionnaire.FOLLOW_UP_FIELDS)]
    return [("The team's reply", REPLY_FIELDS)]


def _value_lines(spec: Field, value: envelope.FieldValue) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if spec.kind in (RADIO, CHECKBOXES, SELECT):
        lines = []
        for item in items:
            label = dict(spec.choices).get(item)
            shown = (
                f"{label} [{one_line(item)}]"
                if label
                else f"[{one_line(item)}] (not a choice of the form)"
            )
            lines.append(f"  - {shown}" if spec.kind == CHECKBOXES else f"  {shown}")
        return lines
    if spec.kind == TEXTAREA:
        return ["-" * 40, *[printable(item) for item in items], "-" * 40]
    return [f"  {one_line(item)}" for item in items]


def render_report(record: dict[str, Any]) -> str:
    """The readable report.txt of one opened submission."""
    kind = str(record["kind"])
    fields: dict[str, envelope.FieldValue] = record["fields"]
    lines = [
        f"{KIND_TITLES.get(kind, kind)} — reprisals portal",
        "=" * 60,
    ]
    if is_urgent(fields):
        details = fields.get("urgent_details", "")
        lines.append("URGENT:      someone is in immediate danger")
        if isinstance(details, str) and details:
            lines.append(f"             {one_line(details)}")
    lines += [
        f"Case:        {record['case']}",
        f"Submission:  {record['id']} ({kind})",
        f"Received:    {record['received_day']} (the day, UTC; no time is kept)",
        f"Language:    {language_name(str(record['locale']))}",
        f"Sealed by:   {SEALERS.get(str(record['sealed_by']), record['sealed_by'])}",
        f"From bundle: {one_line(str(record['bundle']))}",
    ]
    if kind == "report":
        has_key = "reply_public_key" in record
        lines.append(
            "Replies:     "
            + ("possible (portal reply --case this folder)" if has_key else "no reply key")
        )
    if "reply_public_key" in record:
        where = replykeys.describe(
            str(record.get("reply_public_key_from", replykeys.INDEX)),
            one_line(str(record.get("reply_public_key_first_seen", "an earlier run"))),
        )
        lines.append(f"Reply key:   {where}")
    for warning in record.get("warnings", []):
        lines.append(f"WARNING:     {one_line(str(warning))}")
    if any(
        "\ufffd" in printable(v)
        for f in fields.values()
        for v in (f if isinstance(f, list) else [f])
    ):
        lines.append(
            "Note:        control characters were replaced by \ufffd; "
            "report.json has the exact text."
        )
    shown: set[str] = set()
    for title, specs in _fields_for(kind):
        answered = [spec for spec in specs if spec.name in fields]
        if not answered:
            continue
        lines += ["", f"== {title} ==", ""]
        for spec in answered:
            shown.add(spec.name)
            lines.append(spec.label)
            lines += _value_lines(spec, fields[spec.name])
            lines.append("")
    others = [name for name in fields if name not in shown]
    if others:
        lines += ["", "== Other fields (not on the form) ==", ""]
        for name in others:
            lines.append(one_line(name))
            lines += _value_lines(Field(name, TEXTAREA, name), fields[name])
            lines.append("")
    files = record["files"]
    lines += ["", f"== Attachments ({len(files)}) ==", ""]
    for item in files:
        size = sizes.human_size(int(item["size"]), exact=True)
        line = f"  {item['saved_as']}  {size}  {one_line(str(item['type']))}"
        if item["saved_as"].split("/", 1)[1] != item["name"]:
            line += f"  (sent as {one_line(str(item['name']))!r})"
        lines.append(line)
    if not files:
        lines.append("  none")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
def is_urgent(fields: object) -> bool:
    """Whether the submitter said someone is in immediate danger."""
    return isinstance(fields, dict) and fields.get(questionnaire.URGENT) == "yes"
