import { createContext, useContext } from "react";

import type { ApiClient } from "./api/client";
import type { Me, Role } from "./api/types";

export interface Session {
  client: ApiClient;
  user: Me;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

/** Who sends studies: technicians for their hospital, coordinators and admins for any. */
export function canSend(role: Role): boolean {
  return role === "tech" || role === "coordinator" || role === "admin";
}

/** Who may change a case's clinical information (the backend's rule: the senders). */
export const canEditCase = canSend;

export function homePath(role: Role): string {
  switch (role) {
    case "tech":
      return "/upload";
    case "radiologist":
      return "/reading";
    case "coordinator":
      return "/control";
    case "admin":
      return "/admin";
  }
}

/** The reading room (worklist, viewer, report) is the radiologists'. */
export function canRead(role: Role): boolean {
  return role === "radiologist";
}

/** The control room (live board, turnaround, critical results, deliveries): coordinators, admins. */
export function canControl(role: Role): boolean {
  return role === "coordinator" || role === "admin";
}

export function canAdminister(role: Role): boolean {
  return role === "admin";
}
