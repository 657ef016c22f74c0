// Connection quality (RTT and packet loss from getStats) and remote audio levels
// (RTCRtpReceiver.getSynchronizationSources, falling back to inbound-rtp audioLevel).
"use strict";

/** good / fair / poor from a round-trip time (seconds) and a loss fraction (0..1). */
export function rateQuality(rtt, loss) {
  if (rtt === null && loss === null) return "unknown";
  const r = rtt === null ? 0 : rtt;
  const l = loss === null ? 0 : loss;
  if (r < 0.15 && l < 0.02) return "good";
  if (r < 0.4 && l < 0.08) return "fair";
  return "poor";
}

/** Samples getStats() and rates the connection; keeps the previous counters for deltas. */
export class QualityProbe {
  constructor() {
    this.previous = new Map();
  }

  reset() {
    this.previous.clear();
  }

  async measure(pc) {
    if (!pc || pc.connectionState === "closed") return { level: "unknown", rtt: null, loss: null };
    const report = await pc.getStats();
    let rtt = null;
    let lost = 0;
    let received = 0;
    let remoteLoss = null;
    const selectedPairs = new Set();
    report.forEach((stat) => {
      if (stat.type === "transport" && stat.selectedCandidatePairId) selectedPairs.add(stat.selectedCandidatePairId);
    });
    report.forEach((stat) => {
      if (stat.type === "candidate-pair") {
        const selected = selectedPairs.size ? selectedPairs.has(stat.id) : stat.nominated && stat.state === "succeeded";
        if (selected && typeof stat.currentRoundTripTime === "number") rtt = stat.currentRoundTripTime;
      } else if (stat.type === "inbound-rtp") {
        const before = this.previous.get(stat.id) || { packetsLost: 0, packetsReceived: 0 };
        lost += Math.max(0, (stat.packetsLost || 0) - before.packetsLost);
        received += Math.max(0, (stat.packetsReceived || 0) - before.packetsReceived);
        this.previous.set(stat.id, { packetsLost: stat.packetsLost || 0, packetsReceived: stat.packetsReceived || 0 });
      } else if (stat.type === "remote-inbound-rtp" && typeof stat.fractionLost === "number") {
        remoteLoss = Math.max(remoteLoss || 0, stat.fractionLost);
        if (rtt === null && typeof stat.roundTripTime === "number") rtt = stat.roundTripTime;
      }
    });
    let loss = received + lost > 0 ? lost / (received + lost) : null;
    if (remoteLoss !== null) loss = Math.max(loss || 0, remoteLoss);
    return { level: rateQuality(rtt, loss), rtt, loss };
  }
}

/**
 * Audio level (0..1) of each remote member's microphone.
 * @param {Array} remote  [{member_id, source, receiver, track}] from Peer.remoteTracks()
 */
export async function remoteAudioLevels(pc, remote) {
  const levels = new Map();
  const audio = remote.filter((item) => item.source === "mic" && item.receiver);
  let needStats = false;
  const epochNow = performance.timeOrigin + performance.now();
  for (const item of audio) {
    if (typeof item.receiver.getSynchronizationSources === "function") {
      const sources = item.receiver.getSynchronizationSources();
      let level = 0;
      for (const source of sources) {
        // Entries older than a second belong to a source that went quiet.
        // (timestamps are epoch-based in current browsers, page-relative in older ones)
        const age = (source.timestamp > 1e12 ? epochNow : performance.now()) - source.timestamp;
        if (typeof source.audioLevel === "number" && age < 1000) level = Math.max(level, source.audioLevel);
      }
      levels.set(item.member_id, level);
    } else {
      needStats = true;
    }
  }
  if (needStats && pc) {
    const byTrack = new Map(audio.map((item) => [item.track.id, item.member_id]));
    const byMid = new Map(audio.map((item) => [item.mid, item.member_id]));
    const report = await pc.getStats();
    report.forEach((stat) => {
      if (stat.type !== "inbound-rtp" || stat.kind !== "audio" || typeof stat.audioLevel !== "number") return;
      const member = byTrack.get(stat.trackIdentifier) || byMid.get(stat.mid);
      if (member && !levels.has(member)) levels.set(member, stat.audioLevel);
    });
  }
  return levels;
}
