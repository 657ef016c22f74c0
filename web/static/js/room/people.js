// Participant list grouped by sub-room, with the host's controls.  Every control
// is a <button data-action="..."> (tests click them) that calls onAction.
"use strict";

import { clear, el } from "./dom.js";
import { roleName, qualityBadge } from "./tiles.js";
import { t } from "./strings.js";

const STAFF = ["host", "co_host"];

export function isRunner(state) {
  return Boolean(state) && STAFF.includes(state.my_role);
}

export function subroomLabel(subroom) {
  if (subroom.label) return subroom.label;
  if (subroom.kind === "caucus") {
    const n = subroom.id.split(":")[1] || "";
    return t("caucus_n", { n });
  }
  return t(`subroom_${subroom.kind}`);
}

export class PeopleList {
  /**
   * @param {HTMLElement} root  container for the groups
   * @param {object} hooks  onAction(action, payload) -> Promise
   */
  constructor(root, { onAction }) {
    this.root = root;
    this.onAction = onAction;
    this.selected = new Set();
    this.state = null;
    this.countNode = null;
  }

  setState(state) {
    this.state = state;
    const ids = new Set(state.members.map((m) => m.id));
    for (const id of this.selected) if (!ids.has(id)) this.selected.delete(id);
    this.render();
  }

  render() {
    const state = this.state;
    if (!state) return;
    const runner = isRunner(state);
    const host = state.my_role === "host";
    const groups = new Map();
    for (const subroom of state.subrooms) groups.set(subroom.id, { subroom, members: [] });
    for (const member of state.members) {
      if (member.presence === "left") continue;
      if (!groups.has(member.subroom)) {
        const kind = member.subroom.startsWith("caucus:") ? "caucus" : member.subroom;
        groups.set(member.subroom, { subroom: { id: member.subroom, kind, label: "", record: false }, members: [] });
      }
      groups.get(member.subroom).members.push(member);
    }
    const fragment = document.createDocumentFragment();
    if (runner && state.kind === "mediation") fragment.append(this.selectionTools(state, host));
    for (const { subroom, members } of groups.values()) {
      if (members.length === 0 && subroom.kind !== "main") continue;
      fragment.append(this.group(state, subroom, members, runner, host));
    }
    // A state update rebuilds the list: keep the keyboard focus where it was.
    const focused = document.activeElement;
    const keep =
      focused && this.root.contains(focused)
        ? { action: focused.dataset.action, member: (focused.closest("[data-member-id]") || {}).dataset, group: (focused.closest("[data-subroom]") || {}).dataset }
        : null;
    clear(this.root);
    this.root.append(fragment);
    if (keep) this.restoreFocus(keep);
  }

  restoreFocus(keep) {
    const memberId = keep.member ? keep.member.memberId : undefined;
    const subroom = keep.group ? keep.group.subroom : undefined;
    let scope = this.root;
    if (memberId) scope = this.root.querySelector(`li[data-member-id="${CSS.escape(memberId)}"]`) || this.root;
    else if (subroom) scope = this.root.querySelector(`section[data-subroom="${CSS.escape(subroom)}"]`) || this.root;
    const target = keep.action ? scope.querySelector(`[data-action="${CSS.escape(keep.action)}"]`) : scope.querySelector("input.pick");
    if (target) target.focus();
  }

  group(state, subroom, members, runner, host) {
    const headingId = `group-${subroom.id.replace(/[^a-z0-9]/gi, "-")}`;
    const tools = [];
    if (runner && subroom.kind === "lobby" && members.length > 0) {
      tools.push(this.button("admit_all", t("admit_all"), {}, "small"));
    }
    if (runner && subroom.kind === "caucus") {
      tools.push(
        this.button("to_main", t("end_caucus"), { member_ids: members.map((m) => m.id), subroom: subroom.id }, "small"),
      );
      if (host) {
        tools.push(
          this.button(
            "caucus_record",
            subroom.record ? t("caucus_record_off") : t("caucus_record_on"),
            { subroom: subroom.id, record: !subroom.record },
            "small",
            { "aria-pressed": subroom.record ? "true" : "false" },
          ),
        );
      }
    }
    const note =
      subroom.kind === "caucus"
        ? el("span", { class: subroom.record ? "group-note group-note--rec" : "group-note", text: subroom.record ? t("caucus_recorded") : t("caucus_not_recorded") })
        : null;
    return el("section", { class: "people-group", dataset: { subroom: subroom.id, kind: subroom.kind }, attrs: { "aria-labelledby": headingId } }, [
      el("h3", { id: headingId }, [subroomLabel(subroom), " ", el("span", { class: "count", text: `(${members.length})` })]),
      note,
      tools.length ? el("div", { class: "group-tools" }, tools) : null,
      el("ul", { class: "people-list" }, members.map((m) => this.entry(state, m, runner, host))),
    ]);
  }

  entry(state, member, runner, host) {
    const isMe = member.id === state.me;
    const states = [];
    if (!member.audio || member.muted_by_host) states.push(member.muted_by_host ? t("muted_by_host") : t("mic_off"));
    if (!member.video || member.video_stopped_by_host) states.push(member.video_stopped_by_host ? t("video_stopped_by_host") : t("camera_off"));
    if (member.screen) states.push(t("sharing_screen"));
    if (member.presence === "reconnecting") states.push(t("reconnecting"));
    const inCaucusHidden = !runner && member.subroom.startsWith("caucus:") && member.subroom !== state.my_subroom;
    if (inCaucusHidden) states.push(t("in_caucus"));
    const selectable = runner && state.kind === "mediation" && member.subroom === "main";
    const checkbox = selectable
      ? el("input", {
          type: "checkbox",
          class: "pick",
          checked: this.selected.has(member.id),
          attrs: { "aria-label": t("select_member", { name: member.name }) },
          dataset: { memberId: member.id },
          on: {
            change: (event) => {
              if (event.target.checked) this.selected.add(member.id);
              else this.selected.delete(member.id);
              this.updateSelectionButtons();
            },
          },
        })
      : null;
    const controls = runner && !isMe && !(state.my_role === "co_host" && member.role === "host") ? this.controls(state, member) : [];
    return el("li", { class: "person", dataset: { memberId: member.id, subroom: member.subroom, presence: member.presence } }, [
      el("div", { class: "person-main" }, [
        checkbox,
        el("span", { class: "person-seat", text: member.seat || "" }),
        el("span", { class: "person-name", text: isMe ? t("you_name", { name: member.name }) : member.name }),
        el("span", { class: "person-role", text: roleName(member.role) }),
        member.hand ? el("span", { class: "badge badge--hand", text: t("hand_raised") }) : null,
        qualityBadge(member.quality),
      ]),
      states.length ? el("p", { class: "person-state", text: states.join(" · ") }) : null,
      controls.length ? el("div", { class: "person-tools" }, controls) : null,
    ]);
  }

  controls(state, member) {
    const id = { member_id: member.id };
    const list = [];
    if (member.subroom === "lobby") {
      list.push(this.button("admit", t("admit"), id, "small"));
      list.push(this.button("remove", t("remove"), { ...id, name: member.name }, "secondary small danger"));
      return list;
    }
    if (member.subroom === "witness_wait") {
      list.push(this.button("call", t("call_witness"), { member_ids: [member.id], to: "main" }, "small"));
      return list;
    }
    if (member.subroom.startsWith("caucus:")) {
      list.push(this.button("to_main", t("back_to_main"), { member_ids: [member.id] }, "secondary small"));
    }
    if (member.audio && !member.muted_by_host) list.push(this.button("mute", t("mute"), id, "secondary small"));
    else list.push(this.button("unmute_request", t("ask_to_unmute"), id, "secondary small"));
    if (member.video && !member.video_stopped_by_host) list.push(this.button("stop_video", t("stop_video"), id, "secondary small"));
    if (member.subroom === "main") {
      const waitRoom = state.kind === "hearing" && member.role === "witness" ? "witness_wait" : "";
      if (waitRoom) list.push(this.button("move", t("to_witness_room"), { member_ids: [member.id], to: waitRoom }, "secondary small"));
      else list.push(this.button("to_lobby", t("to_lobby"), id, "secondary small"));
    }
    list.push(this.button("remove", t("remove"), { ...id, name: member.name }, "secondary small danger"));
    return list;
  }

  selectionTools(state, host) {
    const caucuses = state.subrooms.filter((s) => s.kind === "caucus");
    const record = el("input", { type: "checkbox", id: "caucus-record-new" });
    const target = el(
      "select",
      { id: "caucus-target", attrs: { "aria-label": t("move_selected_to") } },
      caucuses.map((s) => el("option", { value: s.id, text: subroomLabel(s) })),
    );
    const start = this.button("caucus", t("start_caucus"), null, "small", {}, () => ({
      member_ids: Array.from(this.selected),
      record: host && record.checked,
    }));
    const move = this.button("move_selected", t("move_selected"), null, "small", {}, () => ({
      member_ids: Array.from(this.selected),
      to: target.value,
    }));
    this.selectionButtons = [start, move];
    const box = el("fieldset", { class: "selection-tools" }, [
      el("legend", { text: t("caucus_tools") }),
      el("p", { class: "hint", text: t("caucus_hint") }),
      host ? el("label", { class: "check" }, [record, " ", t("record_caucus")]) : null,
      el("div", { class: "group-tools" }, [start, caucuses.length ? target : null, caucuses.length ? move : null]),
    ]);
    this.updateSelectionButtons();
    return box;
  }

  updateSelectionButtons() {
    for (const button of this.selectionButtons || []) button.disabled = this.selected.size === 0;
  }

  /** A host control.  `payload` is fixed, or computed at click time by `makePayload`. */
  button(action, label, payload, className, attrs = {}, makePayload = null) {
    return el("button", {
      type: "button",
      class: className,
      text: label,
      dataset: { action },
      attrs,
      on: {
        click: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            const ok = await this.onAction(action, makePayload ? makePayload() : payload);
            if (ok && (action === "caucus" || action === "move_selected")) this.selected.clear();
          } finally {
            button.disabled = false;
          }
        },
      },
    });
  }
}
