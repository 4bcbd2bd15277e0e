// Derives the vault key (Argon2id, about a second) off the page's thread,
// so that the page keeps drawing. One message in: {id, words, salt}; one
// out: {id, key: Uint8Array} or {id, error}. web/build.sh names the
// content-hashed hush_kdf.js here.
import init, { derive_vault_key } from "./hush_kdf.js";
const ready = init();
self.onmessage = async (e) => {
  const { id, words, salt } = e.data;
  try {
    await ready;
    const key = derive_vault_key(words, salt);
    self.postMessage({ id, key }, [key.buffer]);
  } catch (err) {
    self.postMessage({ id, error: String(err) });
  }
};
