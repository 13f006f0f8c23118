// The admin page's section and selection live in the query string (?tab=users, ?user=12), so a
// reload or a link keeps them and the router needs no routes of its own for them.

export const TABS = ["hospitals", "users", "experts"] as const;
export type Tab = (typeof TABS)[number];

export interface AdminQuery {
  tab: Tab;
  userId: number | null;
}

export function parseAdminQuery(search: string): AdminQuery {
  const params = new URLSearchParams(search);
  const tab = params.get("tab");
  const user = params.get("user") ?? "";
  return {
    tab: (TABS as readonly string[]).includes(tab ?? "") ? (tab as Tab) : "hospitals",
    userId: /^\d{1,12}$/u.test(user) ? Number(user) : null,
  };
}

export function adminPath(tab: Tab): string {
  return tab === "hospitals" ? "/admin" : `/admin?tab=${tab}`;
}
