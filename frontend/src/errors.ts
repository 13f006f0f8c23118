import { ApiError } from "./api/client";
import type { I18n } from "./i18n/context";

/** A sentence for a person: the server's message, or ours when there was no answer. */
export function errorText(error: unknown, t: I18n["t"]): string {
  if (error instanceof ApiError) {
    if (error.isNetwork) return t("error.network");
    return error.message;
  }
  return t("error.generic", { message: error instanceof Error ? error.message : String(error) });
}
