"""Static checks of the templates: patient templates cannot even name a host-only value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import Environment, meta, nodes

from telemed.workers.notifier.messages import NoticeKind
from telemed.workers.notifier.render import build_environment, doctor_context, patient_context
from tests.support.mail_scan import parsed
from tests.support.notices import doctor, patient

TEMPLATES = Path(__file__).resolve().parents[2] / "workers" / "notifier" / "templates"
HOST_ONLY = re.compile(r"start|host|zak|token|secret|signed", re.IGNORECASE)


@pytest.fixture(scope="module")
def env() -> Environment:
    return build_environment()


def closure(env: Environment, name: str) -> dict[str, nodes.Template]:
    """``name`` and every template it extends, includes or imports, parsed."""
    seen: dict[str, nodes.Template] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        source = env.loader.get_source(env, current)[0]  # type: ignore[union-attr]
        seen[current] = env.parse(source)
        for ref in meta.find_referenced_templates(seen[current]):
            assert ref is not None, f"{current}: dynamic template references defeat this check"
            todo.append(ref)
    return seen


def patient_templates() -> list[str]:
    return sorted(p.relative_to(TEMPLATES).as_posix() for p in (TEMPLATES / "patient").glob("*.j2"))


def test_there_are_patient_templates() -> None:
    assert {"patient/invite.txt.j2", "patient/invite.html.j2", "patient/cancelled.html.j2"} <= set(
        patient_templates()
    )


@pytest.mark.parametrize("kind", list(NoticeKind))
@pytest.mark.parametrize("role", ["patient", "doctor"])
@pytest.mark.parametrize("fmt", ["txt", "html"])
def test_every_kind_has_templates_for_every_role(kind: NoticeKind, role: str, fmt: str) -> None:
    assert (TEMPLATES / role / f"{kind.value}.{fmt}.j2").is_file()


@pytest.mark.parametrize("name", patient_templates())
def test_patient_templates_reference_no_host_only_value(env: Environment, name: str) -> None:
    allowed = set(patient_context(patient(), str)) | set(env.globals)
    for template_name, ast in closure(env, name).items():
        undeclared = meta.find_undeclared_variables(ast)
        assert not {v for v in undeclared if HOST_ONLY.search(v)}, template_name
        # Only what the patient context provides (plus gettext & co.) may be read.
        assert undeclared <= allowed, (template_name, undeclared - allowed)
        # Nor may any name, attribute or key anywhere in the tree look host-only.
        for node in ast.find_all((nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Keyword)):
            label = {
                nodes.Name: lambda n: n.name,
                nodes.Getattr: lambda n: n.attr,
                nodes.Keyword: lambda n: n.key,
                nodes.Getitem: lambda n: n.arg.value if isinstance(n.arg, nodes.Const) else "",
            }[type(node)](node)
            assert not HOST_ONLY.search(str(label)), (template_name, label)
        # ... and no literal in a patient template may spell out a host link.
        for const in ast.find_all(nodes.Const):
            if isinstance(const.value, str):
                assert "/s/" not in const.value and "zak=" not in const.value.lower()
        for data in ast.find_all(nodes.TemplateData):
            assert "/s/" not in data.data and "zak=" not in data.data.lower()


def test_patient_context_has_no_host_only_key() -> None:
    assert not {k for k in patient_context(patient(), str) if HOST_ONLY.search(k)}
    assert "start_url" in doctor_context(doctor(), str)  # the check above is not vacuous


def test_the_check_would_catch_a_leak(env: Environment) -> None:
    ast = env.parse("{{ _('Join: %(u)s', u=start_url) }}{{ notice.zak }}")
    assert "start_url" in meta.find_undeclared_variables(ast)
    assert any(HOST_ONLY.search(n.attr) for n in ast.find_all(nodes.Getattr))


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.j2")), ids=lambda p: p.name)
def test_every_template_compiles(env: Environment, path: Path) -> None:
    env.get_template(path.relative_to(TEMPLATES).as_posix())


def test_html_templates_autoescape_and_text_templates_do_not(env: Environment) -> None:
    assert env.get_template("patient/invite.html.j2").environment.autoescape("x.html.j2")  # type: ignore[operator]
    assert not env.autoescape("x.txt.j2")  # type: ignore[operator]


# --- calendar entries and admin alerts (notifications issue) --------------------------------


def test_calendar_templates_exist_for_both_roles() -> None:
    assert {"patient/calendar.txt.j2", "doctor/calendar.txt.j2"} <= {
        p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("calendar.txt.j2")}


@pytest.mark.parametrize("name", ["doctor/calendar.txt.j2", "patient/calendar.txt.j2", "admin/alert.txt.j2",
                                  "admin/alert.html.j2"])
def test_calendar_and_admin_templates_reference_no_host_only_value(env: Environment, name: str) -> None:
    """Calendar entries outlive links and are shared; alerts go to people who are not the
    host. Neither may even name a start link (the doctor's mail is where it belongs)."""
    from telemed.workers.notifier.render import calendar_context

    allowed = set(env.globals) | {"alert_subject", "alert_body"}
    allowed |= set(calendar_context(doctor_context(doctor(), str)))
    allowed |= set(calendar_context(patient_context(patient(), str)))
    for template_name, ast in closure(env, name).items():
        undeclared = meta.find_undeclared_variables(ast)
        assert not {v for v in undeclared if HOST_ONLY.search(v)}, template_name
        assert undeclared <= allowed, (template_name, undeclared - allowed)
        for node in ast.find_all((nodes.Name, nodes.Getattr, nodes.Keyword)):
            label = getattr(node, "name", None) or getattr(node, "attr", None) or getattr(node, "key", "")
            assert not HOST_ONLY.search(str(label)), (template_name, label)


def test_calendar_context_drops_every_start_link_key() -> None:
    from telemed.workers.notifier.render import calendar_context

    context = calendar_context(doctor_context(doctor(), str))
    assert not {k for k in context if HOST_ONLY.search(k)}
    assert "join_url" in context


def test_calendar_texts_render_for_every_kind(env: Environment) -> None:
    from telemed.workers.notifier.render import MailRenderer

    renderer = MailRenderer()
    for kind in (NoticeKind.INVITE, NoticeKind.UPDATED):
        summary, description = renderer.calendar_text("patient", patient_context(patient(kind=kind), str))
        assert "Dr. Ada Lovelace" in summary and "zoom.us/j/" in description
        summary, description = renderer.calendar_text("doctor", doctor_context(doctor(kind=kind), str))
        assert "Grace Hopper" in summary and "zak=" not in description and "/s/" not in description
    cancelled = patient(kind=NoticeKind.CANCELLED, join_url=None, passcode=None)
    summary, description = renderer.calendar_text("patient", patient_context(cancelled, str))
    assert summary.startswith("Cancelled") and "zoom.us" not in description


def test_doctor_mail_explains_which_kind_of_start_link_it_holds() -> None:
    from telemed.workers.notifier.render import MailRenderer

    renderer = MailRenderer()
    signed = doctor(start_url="https://telemed.clinic.example/start/abc.def", start_url_signed=True)
    raw = doctor()
    for notice, phrase in ((signed, "until the appointment ends"), (raw, "a reminder shortly before the start")):
        message = renderer.doctor(notice, "telemed <no-reply@clinic.example>")
        for part in parsed(message).walk():
            if part.get_content_maintype() == "text":
                assert phrase in " ".join(part.get_content().split())
