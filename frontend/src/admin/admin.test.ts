import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import { aeTitleProblem, hospitalCodeProblem, passwordProblem, splitList, usernameProblem, webhookUrlProblem } from "./checks";
import { endpointBody, endpointFields, endpointTarget, checkEndpointForm, emptyEndpointForm } from "./endpoints";
import {
  bodyOf,
  checkExpertForm,
  emptyExpertForm,
  expertFieldOf,
  expertFields,
  formOf,
  fromLocalInput,
  toLocalInput,
  unknownHospitalRows,
  type ExpertForm,
} from "./expertForm";
import { baseField, fieldOf, placeProblems, plainWords } from "./problems";
import { adminPath, parseAdminQuery } from "./query";
import type { Expert } from "./types";

const invalid = (detail: { field: string; problem: string }[]) =>
  new ApiError(422, "invalid_request", detail.map((d) => `${d.field}: ${d.problem}`).join("; "), detail);

describe("AE title check (PS3.5 VR AE)", () => {
  it("takes 1-16 characters of the default repertoire", () => {
    expect(aeTitleProblem("CT_SCANNER_01")).toBeNull();
    expect(aeTitleProblem("A")).toBeNull();
    expect(aeTitleProblem("SIXTEEN_CHARS_AE")).toBeNull();
    expect(aeTitleProblem("MR 3T")).toBeNull();
  });
  it("trims the spaces the server would refuse", () => {
    expect(aeTitleProblem("  PACS  ")).toBeNull();
  });
  it("refuses empty, too long, backslash and non-ASCII", () => {
    expect(aeTitleProblem("   ")).toBe("admin.problem.required");
    expect(aeTitleProblem("SEVENTEEN_CHARS_A")).toBe("admin.check.aeTooLong");
    expect(aeTitleProblem("BAD\\AE")).toBe("admin.check.aeCharacters");
    expect(aeTitleProblem("影像科")).toBe("admin.check.aeCharacters");
    expect(aeTitleProblem("TAB\tAE")).toBe("admin.check.aeCharacters");
  });
});

describe("other checks", () => {
  it("hospital codes, usernames, passwords", () => {
    expect(hospitalCodeProblem("XH-01")).toBeNull();
    expect(hospitalCodeProblem("X")).toBe("admin.check.code");
    expect(hospitalCodeProblem("县医院")).toBe("admin.check.code");
    expect(usernameProblem("dr.wang@xh")).toBeNull();
    expect(usernameProblem("dr wang")).toBe("admin.check.username");
    expect(passwordProblem("")).toBe("admin.problem.required");
    expect(passwordProblem("1234567")).toBe("admin.check.passwordShort");
    expect(passwordProblem("12345678")).toBeNull();
  });
  it("webhook URLs: https, or http to loopback only", () => {
    expect(webhookUrlProblem("https://pacs.example.cn/hook")).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9000/hook")).toBeNull();
    expect(webhookUrlProblem("http://pacs.example.cn/hook")).toBe("admin.check.https");
    expect(webhookUrlProblem("pacs.example.cn")).toBe("admin.check.url");
    expect(webhookUrlProblem("")).toBe("admin.problem.required");
  });
  it("splits address lists", () => {
    expect(splitList(" 10.0.0.0/8, 192.168.1.5\n::1 ")).toEqual(["10.0.0.0/8", "192.168.1.5", "::1"]);
    expect(splitList("  ")).toEqual([]);
  });
});

describe("server problems in plain words", () => {
  it("translates pydantic's messages", () => {
    expect(plainWords("Field required")).toEqual({ key: "admin.problem.required" });
    expect(plainWords("String should have at least 8 characters")).toEqual({
      key: "admin.problem.minLength",
      vars: { n: 8 },
    });
    expect(plainWords("Input should be less than or equal to 3")).toEqual({
      key: "admin.problem.atMost",
      vars: { n: "3" },
    });
    expect(plainWords("Input should be 'full_time' or 'part_time'")).toEqual({
      key: "admin.problem.choice",
      vars: { choices: "full_time, part_time" },
    });
  });
  it("explains a pattern with the field's hint, never the expression", () => {
    const words = plainWords("String should match pattern '^[\\x21-\\x5B]$'", "admin.check.aeCharacters");
    expect(words).toEqual({ key: "admin.check.aeCharacters" });
    expect(plainWords("String should match pattern '^x$'")).toEqual({ key: "admin.problem.pattern" });
  });
  it("keeps the server's own sentences, without pydantic's prefix", () => {
    expect(plainWords("Value error, 'Mars/Base' is not an IANA time zone name")).toEqual({
      text: "'Mars/Base' is not an IANA time zone name",
    });
    expect(plainWords("Value error, the URL must use https")).toEqual({ text: "The URL must use https" });
  });
});

describe("placing problems on fields", () => {
  it("takes the longest field that is the path or a dotted prefix of it", () => {
    const fields = ["ae_titles", "ae_titles.0.ae_title", "ae_titles.0.source_addresses"];
    expect(fieldOf("ae_titles.0.ae_title", fields)).toBe("ae_titles.0.ae_title");
    expect(fieldOf("ae_titles.0.source_addresses.1", fields)).toBe("ae_titles.0.source_addresses");
    expect(fieldOf("ae_titles", fields)).toBe("ae_titles");
    expect(fieldOf("ae_titles.0.ae_titlex", ["ae_titles.0.ae_title"])).toBeNull();
    expect(fieldOf("url", ["config", "config.url"], "config")).toBe("config.url");
    expect(fieldOf("", ["config"], "config")).toBe("config");
    expect(baseField("ae_titles.0.ae_title")).toBe("ae_titles.ae_title");
  });
  it("a 422's problems go to their fields, with hints", () => {
    const error = invalid([
      { field: "ae_titles.0.ae_title", problem: "String should match pattern '^x$'" },
      { field: "code", problem: "String should have at least 2 characters" },
      { field: "nothing_here", problem: "Field required" },
    ]);
    const placed = placeProblems(error, {
      fields: ["code", "name", "ae_titles.0.ae_title"],
      hints: { "ae_titles.ae_title": "admin.check.aeCharacters" },
    });
    expect(placed).toEqual([
      { field: "ae_titles.0.ae_title", words: { key: "admin.check.aeCharacters" } },
      { field: "code", words: { key: "admin.problem.minLength", vars: { n: 2 } } },
      { field: null, words: { key: "admin.problem.required" } },
    ]);
  });
  it("any other error is the form's, in the server's words", () => {
    const conflict = new ApiError(409, "conflict", "AE title 'CT1' is already registered to another hospital.");
    expect(placeProblems(conflict, { fields: ["ae_title"] })).toEqual([
      { field: null, words: { text: "AE title 'CT1' is already registered to another hospital." } },
    ]);
    expect(placeProblems(new ApiError(0, "network_error", "down"), { fields: [] })).toEqual([
      { field: null, words: { key: "error.network" } },
    ]);
  });
});

const expert: Expert = {
  user_id: 7,
  username: "dr-li",
  name: "Li Na",
  active: true,
  employment: "part_time",
  qualification: "preliminary",
  state: "offline",
  state_changed_at: "2026-12-01T00:00:00Z",
  subspecialties: { neuro: 3, chest: 1 },
  credentials: [
    { hospital_id: 1, hospital_code: "XH", expires_at: null, expired: false },
    { hospital_id: 2, hospital_code: "RJ", expires_at: "2027-06-30T15:59:00Z", expired: false },
  ],
  cap_open_cases: 5,
  cap_daily_units: null,
  timezone: "Europe/Berlin",
  shifts: [
    { weekday: 0, start: "08:00", end: "17:00" },
    { weekday: 4, start: "22:00", end: "24:00" },
  ],
  windows: [],
  available_now: false,
  available_until: null,
  next_window_start: null,
  open_cases: 0,
  open_units: 0,
  updated_at: "2026-12-01T00:00:00Z",
};

describe("expert profile form ↔ API body", () => {
  it("a new profile starts with one empty subspecialty row, Asia/Shanghai, no caps", () => {
    const form = emptyExpertForm();
    expect(form.subspecialties).toHaveLength(1);
    expect(form.timezone).toBe("Asia/Shanghai");
    expect(checkExpertForm(form)).toEqual([
      { field: "subspecialties", words: { key: "admin.check.subspecialtyNeeded" } },
    ]);
  });

  it("a stored profile goes through the form and back unchanged", () => {
    const body = bodyOf(formOf(expert));
    expect(body).toEqual({
      employment: "part_time",
      qualification: "preliminary",
      subspecialties: { neuro: 3, chest: 1 },
      credentials: [
        { hospital_code: "XH", expires_at: null },
        { hospital_code: "RJ", expires_at: "2027-06-30T15:59:00.000Z" },
      ],
      cap_open_cases: 5,
      cap_daily_units: null,
      timezone: "Europe/Berlin",
      // "24:00" is "00:00" to a time input: at or before the start, so the same shift.
      shifts: [
        { weekday: 0, start: "08:00", end: "17:00" },
        { weekday: 4, start: "22:00", end: "00:00" },
      ],
    });
  });

  it("caps: empty is null (the policy's), anything else a number for the server to judge", () => {
    const form: ExpertForm = { ...emptyExpertForm(), cap_open_cases: " 4 ", cap_daily_units: "2.5" };
    expect(bodyOf(form)).toMatchObject({ cap_open_cases: 4, cap_daily_units: 2.5 });
    expect(bodyOf({ ...form, cap_open_cases: "" }).cap_open_cases).toBeNull();
  });

  it("datetime-local values round-trip through ISO instants", () => {
    expect(fromLocalInput("")).toBeNull();
    expect(fromLocalInput("not a date")).toBeNull();
    const iso = fromLocalInput("2027-01-31T18:30");
    expect(iso).not.toBeNull();
    expect(toLocalInput(iso)).toBe("2027-01-31T18:30");
  });

  it("checks rows: a subspecialty or hospital twice, empty hospital, bad times", () => {
    const form: ExpertForm = {
      ...emptyExpertForm(),
      subspecialties: [
        { subspecialty: "neuro", level: "3" },
        { subspecialty: "neuro", level: "1" },
      ],
      credentials: [
        { hospital_code: "XH", expires: "" },
        { hospital_code: "XH", expires: "" },
        { hospital_code: "", expires: "" },
      ],
      shifts: [{ weekday: "0", start: "8:00", end: "24:00" }],
    };
    expect(checkExpertForm(form).map((p) => p.field)).toEqual([
      "subspecialties.1.subspecialty",
      "credentials.1.hospital_code",
      "credentials.2.hospital_code",
      "shifts.0.start",
    ]);
  });

  it("maps the server's paths to the form's rows", () => {
    const form = formOf(expert);
    expect(expertFieldOf("subspecialties.chest", form)).toBe("subspecialties.1.level");
    expect(expertFieldOf("subspecialties.chest.[key]", form)).toBe("subspecialties.1.subspecialty");
    expect(expertFieldOf("subspecialties.cardiac", form)).toBe("subspecialties");
    expect(expertFieldOf("credentials.1.expires_at", form)).toBe("credentials.1.expires");
    expect(expertFieldOf("timezone", form)).toBeNull();
    const error = invalid([
      { field: "timezone", problem: "Value error, 'Mars' is not an IANA time zone name such as Asia/Shanghai" },
      { field: "shifts.1.end", problem: "String should match pattern '^x$'" },
      { field: "subspecialties.neuro", problem: "Input should be less than or equal to 3" },
      { field: "credentials", problem: "Value error, hospital XH given more than once" },
    ]);
    const placed = placeProblems(error, { fields: expertFields(form), rename: (p) => expertFieldOf(p, form) });
    expect(placed.map((p) => p.field)).toEqual(["timezone", "shifts.1.end", "subspecialties.0.level", "credentials"]);
  });

  it("puts unknown hospital codes (a 400's detail) on their rows", () => {
    const form = formOf(expert);
    expect(unknownHospitalRows({ unknown_hospital_codes: ["RJ"] }, form)).toEqual([
      { field: "credentials.1.hospital_code", words: { key: "admin.check.unknownHospital" } },
    ]);
    expect(unknownHospitalRows("nothing", form)).toEqual([]);
  });
});

describe("delivery endpoints", () => {
  it("a webhook body leaves optional settings out", () => {
    const form = { ...emptyEndpointForm("webhook"), name: " PACS hook ", url: "https://h.example/r", secret: "s".repeat(32) };
    expect(endpointBody(form)).toEqual({
      kind: "webhook",
      name: "PACS hook",
      config: { url: "https://h.example/r", secret: "s".repeat(32) },
      active: true,
    });
    expect(checkEndpointForm(form)).toEqual([]);
    expect(checkEndpointForm({ ...form, secret: "short" }).map((p) => p.field)).toEqual(["config.secret"]);
  });
  it("a DICOM body has a numeric port and the checks of its AE titles", () => {
    const form = { ...emptyEndpointForm("dicom"), name: "PACS", ae_title: "PACS01", host: "10.1.2.3", port: "11112" };
    expect(endpointBody(form).config).toEqual({ ae_title: "PACS01", host: "10.1.2.3", port: 11112, send_sr: false });
    expect(checkEndpointForm({ ...form, port: "70000", calling_ae: "WAY_TOO_LONG_AE_TITLE" }).map((p) => p.field)).toEqual([
      "config.port",
      "config.calling_ae",
    ]);
    expect(endpointFields("dicom")).toContain("config.port");
  });
  it("says where an endpoint delivers", () => {
    expect(endpointTarget({ kind: "webhook", config: { url: "https://h.example/r" } })).toBe("https://h.example/r");
    expect(endpointTarget({ kind: "dicom", config: { ae_title: "PACS", host: "pacs", port: 104 } })).toBe("PACS@pacs:104");
  });
});

describe("admin query string", () => {
  it("reads the tab and the chosen user; anything else is the hospitals tab", () => {
    expect(parseAdminQuery("?tab=experts&user=12")).toEqual({ tab: "experts", userId: 12 });
    expect(parseAdminQuery("?tab=nope&user=x")).toEqual({ tab: "hospitals", userId: null });
    expect(parseAdminQuery("")).toEqual({ tab: "hospitals", userId: null });
    expect(adminPath("users")).toBe("/admin?tab=users");
    expect(adminPath("hospitals")).toBe("/admin");
  });
});
