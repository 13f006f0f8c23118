import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import type { Hospital } from "../api/types";
import { placeProblems } from "./problems";
import type { User } from "./types";
import { checkUserEdit, hospitalProblemsOnField, USER_EDIT_FIELDS, userEditForm, userUpdateBody } from "./userForm";

const hospitals: Hospital[] = [
  { id: 1, code: "XH-COUNTY", name: "County", active: true, ae_titles: [] },
  { id: 2, code: "XH-CITY", name: "City", active: true, ae_titles: [] },
];
const tech: User = { id: 7, username: "tech-a", display_name: "Li Na", role: "tech", hospital_id: 1, active: true };
const doctor: User = {
  id: 8,
  username: "dr-wang",
  display_name: "Dr Wang",
  role: "radiologist",
  hospital_id: null,
  active: true,
};

describe("editing a user: the form", () => {
  it("starts from the user as listed, with the technician's hospital code and no password", () => {
    expect(userEditForm(tech, hospitals)).toEqual({ display_name: "Li Na", hospital_code: "XH-COUNTY", password: "" });
    expect(userEditForm(doctor, hospitals)).toEqual({ display_name: "Dr Wang", hospital_code: "", password: "" });
  });

  it("sends only what changed", () => {
    const form = userEditForm(tech, hospitals);
    expect(userUpdateBody(tech, form, hospitals)).toEqual({});
    expect(userUpdateBody(tech, { ...form, display_name: "  Li Na  " }, hospitals)).toEqual({});
    expect(userUpdateBody(tech, { ...form, display_name: " 李娜 " }, hospitals)).toEqual({ display_name: "李娜" });
    expect(userUpdateBody(tech, { ...form, hospital_code: "XH-CITY" }, hospitals)).toEqual({
      hospital_code: "XH-CITY",
    });
    expect(userUpdateBody(tech, { ...form, password: "new-password" }, hospitals)).toEqual({
      password: "new-password",
    });
  });

  it("never sends a hospital for the other roles", () => {
    const form = { ...userEditForm(doctor, hospitals), hospital_code: "XH-CITY" };
    expect(userUpdateBody(doctor, form, hospitals)).toEqual({});
  });

  it("a technician whose hospital is not listed (yet) still sends the chosen one", () => {
    expect(userUpdateBody(tech, { display_name: "Li Na", hospital_code: "XH-CITY", password: "" }, [])).toEqual({
      hospital_code: "XH-CITY",
    });
  });
});

describe("editing a user: the checks before sending", () => {
  it("takes an empty password as 'keep it'", () => {
    expect(checkUserEdit(tech, userEditForm(tech, hospitals))).toEqual([]);
  });

  it("wants a name, a long enough new password and a technician's hospital", () => {
    const problems = checkUserEdit(tech, { display_name: "  ", hospital_code: "", password: "short" });
    expect(problems).toEqual([
      { field: "display_name", words: { key: "admin.problem.required" } },
      { field: "hospital_code", words: { key: "admin.check.hospitalNeeded" } },
      { field: "password", words: { key: "admin.check.passwordShort" } },
    ]);
    expect(checkUserEdit(doctor, { display_name: "Dr Wang", hospital_code: "", password: "" })).toEqual([]);
  });
});

describe("editing a user: the server's problems", () => {
  it("puts a 422's problems on their fields", () => {
    const error = new ApiError(422, "invalid_request", "password: too short", [
      { field: "password", problem: "String should have at least 8 characters" },
    ]);
    expect(placeProblems(error, { fields: USER_EDIT_FIELDS })).toEqual([
      { field: "password", words: { key: "admin.problem.minLength", vars: { n: 8 } } },
    ]);
  });

  it("puts a message about the hospital next to the hospital field, others on the form", () => {
    const hospital = new ApiError(400, "bad_request", "No hospital with code 'X': choose one that exists.");
    expect(hospitalProblemsOnField(placeProblems(hospital, { fields: USER_EDIT_FIELDS }))).toEqual([
      { field: "hospital_code", words: { text: "No hospital with code 'X': choose one that exists." } },
    ]);
    const self = new ApiError(409, "conflict", "You cannot deactivate your own account: another administrator has to.");
    expect(hospitalProblemsOnField(placeProblems(self, { fields: USER_EDIT_FIELDS }))[0]?.field).toBeNull();
  });
});
