"""Forms for logging in, passwords, users, teams and positions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.models import Role
from portal.web.filters import ROLE_LABELS

REQUIRED = _l("This field is required.")


def _required():
    return DataRequired(message=REQUIRED)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class IsoDateField(DateField):
    """A YYYY-MM-DD date whose error message says what to type."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Enter a date as YYYY-MM-DD.")) from None


class LoginForm(FlaskForm):
    login = StringField(_l("Employee number or e-mail"), [_required(), Length(max=254)])
    password = PasswordField(_l("Password"), [_required(), Length(max=256)])
    remember = BooleanField(_l("Keep me logged in on this computer"))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), [_required(), Length(max=256)])
    new = PasswordField(_l("New password"), [_required(), Length(max=256)])
    confirm = PasswordField(
        _l("New password again"),
        [_required(), EqualTo("new", message=_l("The two new passwords differ."))],
    )


class LanguageForm(FlaskForm):
    locale = SelectField(choices=[("zh_CN", "中文"), ("en", "English")])


class UserForm(FlaskForm):
    agent_no = StringField(
        _l("Employee number"),
        [
            _required(),
            Length(max=32, message=_l("At most %(max)d characters.")),
            Regexp(r"^[A-Za-z0-9._-]+$", message=_l("Use only letters, digits, '.', '_' or '-'.")),
        ],
    )
    name = StringField(
        _l("Name"), [_required(), Length(max=64, message=_l("At most %(max)d characters."))]
    )
    email = StringField(
        _l("E-mail"),
        [Optional(), Email(message=_l("Enter a valid e-mail address.")), Length(max=254)],
    )
    team_id = SelectField(_l("Team"), coerce=int)
    position_id = SelectField(_l("Position"), coerce=int)
    hire_date = IsoDateField(_l("Hire date"), [Optional()])
    roles = MultiCheckboxField(_l("Roles"), choices=[(r.value, ROLE_LABELS[r.value]) for r in Role])

    def __init__(self, *args, teams=(), positions=(), **kwargs):
        super().__init__(*args, **kwargs)
        none = [(0, _l("(none)"))]
        self.team_id.choices = none + [(t.id, t.name) for t in teams]
        self.position_id.choices = none + [(p.id, p.name) for p in positions]

    def validate_roles(self, field):
        if not field.data:
            raise ValidationError(_l("Choose at least one role."))


class TeamForm(FlaskForm):
    name = StringField(
        _l("Team name"), [_required(), Length(max=64, message=_l("At most %(max)d characters."))]
    )
    leads = MultiCheckboxField(_l("Team leads"), coerce=int)


class PositionForm(FlaskForm):
    name = StringField(
        _l("Position name"),
        [_required(), Length(max=64, message=_l("At most %(max)d characters."))],
    )
    description = TextAreaField(
        _l("Description"), [Length(max=500, message=_l("At most %(max)d characters."))]
    )
