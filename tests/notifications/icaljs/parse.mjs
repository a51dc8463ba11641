// Parse an iCalendar file from stdin with Mozilla's ical.js and print what it understood as
// JSON, so the Python tests can compare it with the icalendar library's reading.
//
// Time zones come only from the file's own VTIMEZONE components (nothing is registered with
// ical.js's TimezoneService), so a missing or wrong VTIMEZONE shows up as a wrong instant or
// as "floating" in `tzid`.
//
//   node tests/notifications/icaljs/parse.mjs < invite.ics
//
// Prints {"method", "calname", "timezones": [tzid...], "events": [{uid, sequence, status,
// summary, start, end, tzid, organizer, attendees: [{email, cn, role, partstat, rsvp}]}]}.
// Exits 1 with the parser's message on stderr when the file does not parse.
import ICAL from "ical.js";

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function zoneOf(time) {
  if (!time.zone || time.zone === ICAL.Timezone.localTimezone) {
    return "floating";
  }
  return time.zone.tzid;
}

function address(prop) {
  if (!prop) {
    return null;
  }
  return {
    email: String(prop.getFirstValue()).replace(/^mailto:/i, ""),
    cn: prop.getParameter("cn") ?? null,
    role: prop.getParameter("role") ?? null,
    partstat: prop.getParameter("partstat") ?? null,
    rsvp: prop.getParameter("rsvp") ?? null,
  };
}

function describe(vevent) {
  const event = new ICAL.Event(vevent);
  return {
    uid: event.uid,
    sequence: event.sequence,
    status: vevent.getFirstPropertyValue("status"),
    summary: event.summary,
    description: event.description,
    location: event.location,
    start: event.startDate.toJSDate().toISOString(),
    end: event.endDate.toJSDate().toISOString(),
    tzid: zoneOf(event.startDate),
    end_tzid: zoneOf(event.endDate),
    organizer: address(vevent.getFirstProperty("organizer")),
    attendees: vevent.getAllProperties("attendee").map(address),
  };
}

const text = await readStdin();
try {
  const root = new ICAL.Component(ICAL.parse(text));
  const result = {
    method: root.getFirstPropertyValue("method"),
    calname: root.getFirstPropertyValue("x-wr-calname"),
    timezones: root
      .getAllSubcomponents("vtimezone")
      .map((zone) => zone.getFirstPropertyValue("tzid")),
    events: root.getAllSubcomponents("vevent").map(describe),
  };
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`ical.js could not parse the calendar: ${error.message}\n`);
  process.exit(1);
}
