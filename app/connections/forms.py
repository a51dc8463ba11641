"""Forms of the calendar linking screens. Secrets are write-only: a password field is never
rendered back with its value."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional


class CalDAVForm(FlaskForm):
    url = StringField(
        "Server URL",
        id="caldav-url",
        validators=[DataRequired(message="Enter the server address."), Length(max=2000)],
    )
    username = StringField(
        "User name",
        id="caldav-username",
        validators=[DataRequired(message="Enter your user name."), Length(max=300)],
    )
    password = PasswordField(
        "App-specific password",
        id="caldav-password",
        validators=[DataRequired(message="Enter the app-specific password."), Length(max=500)],
    )


class IcsForm(FlaskForm):
    url = StringField(
        "Feed URL",
        id="ics-url",
        validators=[DataRequired(message="Enter the feed address."), Length(max=2000)],
    )


class CalendarOptionsForm(FlaskForm):
    """One calendar's two choices; "Receives bookings" is drawn as a radio button."""

    for_availability = BooleanField("Counts for availability")
    receives_bookings = BooleanField("Receives bookings")
    stop_receiving = HiddenField()


class MicrosoftForm(FlaskForm):
    """The "Connect Microsoft account" button (and "Link again", which names the account)."""

    login_hint = HiddenField(validators=[Optional(), Length(max=300)])


class OrganisationForm(FlaskForm):
    tenant_id = StringField(
        "Tenant id",
        validators=[DataRequired(message="Enter the tenant id."), Length(max=100)],
    )
    client_id = StringField(
        "Client (application) id",
        validators=[DataRequired(message="Enter the client id."), Length(max=200)],
    )
    client_secret = PasswordField("Client secret", validators=[Optional(), Length(max=500)])
    show_details = BooleanField("Show event details")


# --- Google (issue [12]) -------------------------------------------------------------------


class GoogleForm(FlaskForm):
    """The "Connect Google account" button (and "Link again", which names the account)."""

    login_hint = HiddenField(validators=[Optional(), Length(max=300)])


class GoogleClientForm(FlaskForm):
    """The organisation's OAuth client, used by everyone's personal Google link."""

    client_id = StringField(
        "OAuth client id",
        id="google-client-id",
        validators=[DataRequired(message="Enter the OAuth client id."), Length(max=200)],
    )
    client_secret = PasswordField(
        "OAuth client secret",
        id="google-client-secret",
        validators=[Optional(), Length(max=500)],
    )


class GoogleWorkspaceForm(FlaskForm):
    """The Workspace service account (JSON key, write-only) and the domains it covers."""

    key_file = FileField("Service account key (JSON)", id="google-key-file")
    domains = StringField(
        "Workspace domains",
        id="google-domains",
        validators=[DataRequired(message="Enter at least one domain."), Length(max=2000)],
    )
