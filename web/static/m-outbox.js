// The phone's outbox: visits recorded at the door wait here (IndexedDB, so they
// survive a closed tab, a dead battery and a reload with no signal) until the
// server has stored them. Each keeps the idempotency key it was given when it
// was recorded: sent twice — a retry after a lost answer — it is stored once.
// Records belong to the account that made them and are sent only under it.
(function () {
  "use strict";
  const DB = "wangge-m";
  const STORE = "outbox";

  function open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "key" });
        store.createIndex("account", "account");
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  async function run(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); resolve(result && "result" in result ? result.result : undefined); };
      tx.onerror = () => { db.close(); reject(tx.error); };
    });
  }

  window.WanggeOutbox = {
    /** Keep a record {key, account, body, label, queued_at}. */
    add: (record) => run("readwrite", (store) => store.put(record)),
    /** The account's records, oldest first. */
    async all(account) {
      const rows = await run("readonly", (store) => store.index("account").getAll(account));
      return (rows || []).sort((a, b) => a.queued_at.localeCompare(b.queued_at));
    },
    remove: (key) => run("readwrite", (store) => store.delete(key)),
    async count(account) { return (await this.all(account)).length; },
  };
})();
