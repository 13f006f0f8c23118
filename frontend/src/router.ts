// A small path router: the backend serves index.html for every non-API path, so plain paths work
// on reload.

import { useSyncExternalStore } from "react";

export type Route =
  | { name: "home" }
  | { name: "upload" }
  | { name: "cases"; caseId: number | null }
  | { name: "worklist" }
  | { name: "reading"; caseId: number }
  | { name: "control" }
  | { name: "admin" }
  | { name: "viewer"; studyUid: string }
  | { name: "not-found"; path: string };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/u, "") || "/";
  if (path === "/") return { name: "home" };
  if (path === "/upload") return { name: "upload" };
  if (path === "/cases") return { name: "cases", caseId: null };
  const m = /^\/cases\/(\d{1,12})$/u.exec(path);
  if (m) return { name: "cases", caseId: Number(m[1]) };
  if (path === "/reading") return { name: "worklist" };
  const r = /^\/reading\/(\d{1,12})$/u.exec(path);
  if (r) return { name: "reading", caseId: Number(r[1]) };
  if (path === "/control") return { name: "control" };
  if (path === "/admin") return { name: "admin" };
  const v = /^\/viewer\/(?<uid>[0-9.]{1,64})$/u.exec(path);
  if (v?.groups?.uid) return { name: "viewer", studyUid: v.groups.uid };
  return { name: "not-found", path };
}

export function pathOf(route: Route): string {
  switch (route.name) {
    case "home":
      return "/";
    case "upload":
      return "/upload";
    case "cases":
      return route.caseId === null ? "/cases" : `/cases/${route.caseId}`;
    case "worklist":
      return "/reading";
    case "reading":
      return `/reading/${route.caseId}`;
    case "control":
      return "/control";
    case "admin":
      return "/admin";
    case "viewer":
      return `/viewer/${route.studyUid}`;
    case "not-found":
      return route.path;
  }
}

const NAVIGATE_EVENT = "radrelay:navigate";

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname + window.location.search) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}

function subscribe(callback: () => void): () => void {
  window.addEventListener("popstate", callback);
  window.addEventListener(NAVIGATE_EVENT, callback);
  return () => {
    window.removeEventListener("popstate", callback);
    window.removeEventListener(NAVIGATE_EVENT, callback);
  };
}

export function usePathname(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

/** The query string ("?tab=board"), for pages whose sections live there (the routes match
 * paths only). */
export function useSearch(): string {
  return useSyncExternalStore(subscribe, () => window.location.search);
}

/** For <a> elements: a plain left click navigates in the page; others (new tab ...) go through. */
export function linkClick(path: string) {
  return (event: { button: number; metaKey: boolean; ctrlKey: boolean; shiftKey: boolean; altKey: boolean; defaultPrevented: boolean; preventDefault: () => void }) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(path);
  };
}
