// Editing a user (PATCH /api/users/{id}): the form's values from the user, the checks made before
// sending, and the body with only what changed.

import type { Hospital } from "../api/types";
import { check, PASSWORD_MIN } from "./checks";
import type { FormProblem } from "./problems";
import type { User, UserUpdate } from "./types";

export interface UserEditForm {
  display_name: string;
  /** A technician's hospital code; "" for the other roles. */
  hospital_code: string;
  /** A new password; "" keeps the current one. */
  password: string;
}

/** The server's paths of the edit form's fields. */
export const USER_EDIT_FIELDS = ["display_name", "hospital_code", "password"] as const;

export function userEditForm(user: User, hospitals: readonly Hospital[]): UserEditForm {
  const hospital = hospitals.find((h) => h.id === user.hospital_id);
  return { display_name: user.display_name, hospital_code: hospital?.code ?? "", password: "" };
}

/** What the form can see is wrong: a blank name, a short new password, a technician without a
 * hospital. An empty password is no problem: it means "keep it". */
export function checkUserEdit(user: User, form: UserEditForm): FormProblem[] {
  const short = form.password !== "" && form.password.length < PASSWORD_MIN;
  return [
    ...check("display_name", form.display_name.trim() === "" ? "admin.problem.required" : null),
    ...(user.role === "tech"
      ? check("hospital_code", form.hospital_code === "" ? "admin.check.hospitalNeeded" : null)
      : []),
    ...check("password", short ? "admin.check.passwordShort" : null),
  ];
}

/** The PATCH body: only the fields that differ from the user as listed (the server keeps the
 * rest). `{}` when nothing changed. */
export function userUpdateBody(user: User, form: UserEditForm, hospitals: readonly Hospital[]): UserUpdate {
  const body: UserUpdate = {};
  const name = form.display_name.trim();
  if (name !== user.display_name) body.display_name = name;
  if (user.role === "tech") {
    const current = hospitals.find((h) => h.id === user.hospital_id)?.code ?? "";
    if (form.hospital_code !== current) body.hospital_code = form.hospital_code;
  }
  if (form.password !== "") body.password = form.password;
  return body;
}

/** The server speaks of "hospital" in a message about the whole form ("No hospital with code
 * …", "A technician must belong to a hospital"): those belong next to the hospital field. */
export function hospitalProblemsOnField(problems: readonly FormProblem[]): FormProblem[] {
  return problems.map((p) =>
    p.field === null && "text" in p.words && /hospital/iu.test(p.words.text) ? { ...p, field: "hospital_code" } : p,
  );
}
