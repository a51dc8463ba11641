"""Booking forms. Times are entered as local date + time in the viewer's zone."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from app.guard import MAX_YEAR, MIN_YEAR, year_in_range


def sane_year(form, field) -> None:
    """Years the date maths and the notifier can take (app/guard.py refuses the rest at the
    edge already; this keeps the form honest wherever its data comes from)."""
    if field.data is not None and not year_in_range(field.data.year):
        raise ValidationError(f"Choose a date between the years {MIN_YEAR} and {MAX_YEAR}.")


class WhenForm(FlaskForm):
    day = DateField("Date", validators=[DataRequired(message="Choose a date."), sane_year])
    start = TimeField("Start time", validators=[DataRequired(message="Choose a start time.")])


class BookingForm(WhenForm):
    booking_type = SelectField("Booking type", coerce=int, validators=[DataRequired()])
    people = SelectMultipleField(
        "Held by", coerce=int, validators=[DataRequired(message="Choose at least one person.")]
    )
    learner = SelectField("Learner", coerce=int, validators=[Optional()])
    location_mode = SelectField("Location", validators=[DataRequired()])
    location_detail = StringField("Address or meeting link", validators=[Length(max=500)])
    # Teams only (seed 000): whose Microsoft 365 calendar organises the meeting; empty: the owner.
    organiser_email = EmailField("Organiser email", validators=[Optional(), Length(max=320)])
    description = TextAreaField("Notes", validators=[Length(max=5000)])
    # A time outside the usual (working hours, closed day, booking window) is booked only on
    # purpose: the tick and the reason go into the audit trail.
    book_anyway = BooleanField("Book anyway, outside the usual times")
    anyway_reason = StringField(
        "Reason for booking outside the usual times", validators=[Length(max=500)]
    )

    def validate_anyway_reason(self, field) -> None:
        if self.book_anyway.data and not (field.data or "").strip():
            raise ValidationError("Say why this booking is made outside the usual times.")

    def validate_location_detail(self, field) -> None:
        """A remote booking needs the link people will join with (Teams makes its own)."""
        link = (field.data or "").strip()
        if self.location_mode.data == "remote" and not link.startswith(("https://", "http://")):
            raise ValidationError("Enter the meeting link for a remote booking (https://…).")


class EditForm(WhenForm):
    """Edit and reschedule in one form: a new time, how it meets and the booking's free text."""

    location_mode = SelectField("Location", validators=[Optional()])
    location_detail = StringField("Address or meeting link", validators=[Length(max=500)])
    organiser_email = EmailField("Organiser email", validators=[Optional(), Length(max=320)])
    description = TextAreaField("Notes", validators=[Length(max=5000)])
    # Off-the-job training this booking plans (seed 001); empty: none planned.
    planned_otj_minutes = IntegerField(
        "Planned off-the-job minutes",
        validators=[
            Optional(),
            NumberRange(1, 1440, message="Enter 1 to 1440 minutes, or leave it empty."),
        ],
    )


class RebookForm(WhenForm):
    # SelectChoice, not tuples: WTForms 3.3 deprecates tuple choices (removed in 3.4).
    kind = SelectField(
        "Kind", choices=[SelectChoice("resit", "Resit"), SelectChoice("retake", "Retake")]
    )


class AttendeeForm(FlaskForm):
    user_id = SelectField("Person", coerce=int, validators=[Optional()])
    email = EmailField("Or a guest's email", validators=[Optional(), Length(max=254)])
    name = StringField("Guest's name", validators=[Optional(), Length(max=200)])
    shortcut = HiddenField()


class ActionForm(FlaskForm):
    """Empty form: carries the CSRF token of approve / reject / cancel / complete buttons."""
