// The gallery page: a small client of the imagecore API, with no framework and no build step.
// It runs under a strict Content-Security-Policy: no inline script, no eval, no inline style.
"use strict";

const TOKEN_KEY = "imagecore.token";
// fetch() would send */*, for which the server picks JPEG: name the formats, best first.
const RENDITION_ACCEPT = "image/avif,image/webp,image/jpeg";
// The blurhash is drawn this many pixels across (and as many down as the image's shape asks)
// and stretched: it holds no detail finer than its 4 x 3 components.
const BLUR_WIDTH = 32;
const PAGE_SIZE = 24;
const THUMBNAIL_POLL_MS = 1000;
const THUMBNAIL_POLL_ATTEMPTS = 60;
// Above this size a file goes by tus, in chunks the server keeps: a dropped connection or a
// reloaded page costs the chunk on its way, not the whole file.
const RESUMABLE_UPLOAD_THRESHOLD_BYTES = 8 * 1024 * 1024;
const RESUMABLE_CHUNK_BYTES = 5 * 1024 * 1024;
const RESUMABLE_ENDPOINT = "/files/";
const TUS_VERSION = "1.0.0";

const byId = (id) => document.getElementById(id);

const session = {
  // The token's subject, read from its payload without checking it: only to show who is signed
  // in and which actions to offer. The server checks the token on every request.
  user: null,
};

const grid = {
  filters: {},
  cursor: null,
  exhausted: false,
  loading: null, // the page on its way, as a promise
  // Bumped on every reset, so that a page that arrives for an older grid is dropped.
  generation: 0,
  cards: new Map(), // image_id -> {item, image, objectUrl}, in the grid's order
};

// Whether the server takes tus uploads, asked once (a promise): the embedded server does, but on
// AWS the bytes go straight to S3 and /files/ is not there.
let resumableUploads = null;

const viewer = {
  imageId: null,
  image: null,
  etag: null, // of the metadata shown: the version an edit applies to
  original: null, // the original's bytes as a blob: URL, once they are here (a promise)
  originalUrl: null,
  previewUrl: null, // the preview rendition's bytes as a blob: URL, where it has one
  fetches: null, // aborts the last image's requests when another is shown
  // Bumped whenever another image is shown, so that a late answer for the last one is dropped.
  generation: 0,
};

// --- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const known = body && typeof body === "object" && body.error;
    super(known ? `${body.error}: ${body.message}` : `the server answered ${status}`);
    this.status = status;
    this.code = known ? body.error : null;
    this.requestId = known ? body.request_id : null;
  }
}

function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function callApi(path, options = {}, token = savedToken()) {
  const headers = new Headers(options.headers);
  headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new Error(`the server could not be reached (${error.message})`);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body);
  }
  return response;
}

function describe(error) {
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.requestId) text += ` (request ${error.requestId})`;
  return text;
}

// Where the user is looking: inside the viewer while it is open, else above the grid. A token
// the server no longer takes ends the session, and the sign-in form says why.
function showError(error) {
  if (error instanceof ApiError && error.status === 401 && savedToken()) {
    signOut();
    showSignInError(`Signed out: the server no longer accepts the token (${describe(error)}).`);
    return;
  }
  if (byId("image-view").open) {
    showViewError(describe(error));
    return;
  }
  const message = byId("error");
  message.textContent = describe(error);
  message.hidden = false;
}

function clearError() {
  byId("error").hidden = true;
  byId("error").textContent = "";
}

// --- signing in --------------------------------------------------------------------------------

function tokenSubject(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
    const bytes = Uint8Array.from(binary, (character) => character.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.sub === "string" && claims.sub ? claims.sub : null;
  } catch {
    return null;
  }
}

function showSignInError(text) {
  const message = byId("sign-in-error");
  message.textContent = text;
  message.hidden = false;
}

function showSignedIn(signedIn) {
  byId("sign-in").hidden = signedIn;
  byId("signed-in").hidden = !signedIn;
  byId("gallery").hidden = !signedIn;
  session.user = signedIn ? tokenSubject(savedToken()) : null;
  byId("signed-in-user").textContent = session.user || "a user the token does not name";
  // Without a name, "mine" cannot be asked for; the server still decides what is allowed.
  byId("filter-mine").disabled = !session.user;
}

async function signIn(event) {
  event.preventDefault();
  const input = byId("token-input");
  const submit = byId("sign-in").querySelector("button[type=submit]");
  const token = input.value.trim();
  byId("sign-in-error").hidden = true;
  submit.disabled = true;
  try {
    // The cheapest request that needs a valid token: the token is kept only if it passes.
    await callApi("/images?limit=1", {}, token);
  } catch (error) {
    const refused = error instanceof ApiError && error.status === 401;
    showSignInError(
      refused
        ? `This token is not accepted: ${describe(error)}. Paste the output of: imagecore token NAME`
        : `Could not sign in: ${describe(error)}`,
    );
    input.focus();
    return;
  } finally {
    submit.disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = "";
  clearError();
  showSignedIn(true);
  resetGrid();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (byId("image-view").open) byId("image-view").close();
  grid.generation += 1;
  grid.loading = null;
  removeAllCards();
  byId("upload-list").replaceChildren();
  byId("filter-form").reset();
  grid.filters = {};
  clearError();
  showSignedIn(false);
}

// --- uploading ---------------------------------------------------------------------------------

function batchFields() {
  return {
    title: byId("upload-title").value.trim(),
    tags: byId("upload-tags").value.trim(),
    visibility: byId("upload-visibility").value,
  };
}

async function uploadFiles(files) {
  const fields = batchFields();
  const uploads = Array.from(files).map((file) => uploadFile(file, fields));
  if (uploads.length === 0) return;
  await Promise.all(uploads);
  resetGrid();
}

async function uploadFile(file, fields) {
  const row = addUploadRow(file);
  if (file.size > RESUMABLE_UPLOAD_THRESHOLD_BYTES && (await serverTakesResumableUploads())) {
    return uploadResumably(file, fields, row);
  }
  return uploadInOneRequest(file, fields, row);
}

function addUploadRow(file) {
  const row = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const progress = document.createElement("progress");
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute("aria-label", `Upload of ${file.name}`);
  const outcome = document.createElement("span");
  outcome.textContent = "uploading";
  row.append(name, progress, outcome);
  byId("upload-list").append(row);
  return { progress, outcome };
}

// XMLHttpRequest rather than fetch: only it reports the progress of a request's body.
function uploadInOneRequest(file, fields, { progress, outcome }) {
  const form = new FormData();
  for (const [field, value] of Object.entries(fields)) {
    if (value) form.append(field, value);
  }
  form.append("file", file);

  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/images");
    request.setRequestHeader("Authorization", `Bearer ${savedToken()}`);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = (100 * event.loaded) / event.total;
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        progress.value = 100;
        outcome.textContent = "uploaded";
      } else {
        outcome.textContent = "failed";
        showError(new ApiError(request.status, request.response));
      }
      resolve();
    });
    request.addEventListener("error", () => {
      outcome.textContent = "failed";
      showError(new Error(`the upload of ${file.name} did not reach the server`));
      resolve();
    });
    request.send(form);
  });
}

function serverTakesResumableUploads() {
  if (!resumableUploads) {
    resumableUploads = tus.isSupported
      ? fetch(RESUMABLE_ENDPOINT, { method: "OPTIONS" })
          .then((answer) => {
            const versions = (answer.headers.get("Tus-Version") || "").split(",");
            return answer.ok && versions.map((version) => version.trim()).includes(TUS_VERSION);
          })
          .catch(() => false)
      : Promise.resolve(false);
  }
  return resumableUploads;
}

// The fingerprint under which tus-js-client keeps an upload's URL in localStorage, to resume it
// when the same file is picked again: it names the user, so that one user's upload is never
// tried with another's token.
function userFingerprint(file, options) {
  return tus.defaultOptions
    .fingerprint(file, options)
    .then((fingerprint) => `${encodeURIComponent(session.user)}:${fingerprint}`);
}

function latestUpload(uploads) {
  return uploads.reduce((latest, upload) =>
    Date.parse(upload.creationTime) > Date.parse(latest.creationTime) ? upload : latest,
  );
}

function resumableUploadError(file, error) {
  const answer = error.originalResponse;
  if (!answer) return new Error(`the upload of ${file.name} did not reach the server`);
  let body = null;
  try {
    body = JSON.parse(answer.getBody());
  } catch {
    // Not the API's JSON (a proxy's page, say): the status alone tells what happened.
  }
  return new ApiError(answer.getStatus(), body);
}

// By tus: the form's fields go once, as the upload's metadata; the bytes follow in chunks.
function uploadResumably(file, fields, { progress, outcome }) {
  const metadata = { filename: file.name, filetype: file.type, ...fields };
  // Without a user to file the upload under, none is kept for resuming.
  const resumable = Boolean(session.user);
  let resumedFrom = null; // "41%", once the server said how much of a picked-up upload it holds

  return new Promise((resolve) => {
    const upload = new tus.Upload(file, {
      endpoint: RESUMABLE_ENDPOINT,
      chunkSize: RESUMABLE_CHUNK_BYTES,
      headers: { Authorization: `Bearer ${savedToken()}` },
      metadata: Object.fromEntries(Object.entries(metadata).filter(([, value]) => value)),
      fingerprint: userFingerprint,
      storeFingerprintForResuming: resumable,
      removeFingerprintOnSuccess: true,
      onProgress(sent, total) {
        progress.value = (100 * sent) / total;
      },
      onAfterResponse(request, answer) {
        // The offset the server holds of an upload picked up again: only the rest is sent.
        if (request.getMethod() === "HEAD" && answer.getStatus() === 200) {
          const held = Number(answer.getHeader("Upload-Offset"));
          resumedFrom = `${Math.floor((100 * held) / file.size)}%`;
          outcome.textContent = `resuming from ${resumedFrom}`;
        }
      },
      // The answer that took the last byte names the image the file became.
      onSuccess({ lastResponse }) {
        if (lastResponse.getHeader("Image-Location")) {
          progress.value = 100;
          outcome.textContent = resumedFrom ? `uploaded (resumed from ${resumedFrom})` : "uploaded";
        } else {
          outcome.textContent = "failed";
          showError(new Error(`the server took ${file.name} but named no image made of it`));
        }
        resolve();
      },
      onError(error) {
        outcome.textContent = "failed";
        showError(resumableUploadError(file, error));
        resolve();
      },
    });
    const previous = resumable ? upload.findPreviousUploads() : Promise.resolve([]);
    previous.then((uploads) => {
      if (uploads.length > 0) upload.resumeFromPreviousUpload(latestUpload(uploads));
      upload.start();
    });
  });
}

function watchDropZone() {
  const zone = byId("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    uploadFiles(event.dataTransfer.files);
  });
  const picker = byId("file-input");
  picker.addEventListener("change", () => {
    const chosen = Array.from(picker.files);
    picker.value = "";
    uploadFiles(chosen);
  });
}

// --- the grid ----------------------------------------------------------------------------------

function resetGrid() {
  grid.generation += 1;
  grid.cursor = null;
  grid.exhausted = false;
  grid.loading = null;
  removeAllCards();
  loadNextPage();
}

// The next page, or the one already on its way: the viewer waits for it to step past the end.
function loadNextPage() {
  if (grid.loading) return grid.loading;
  if (grid.exhausted || !savedToken()) return Promise.resolve();
  const generation = grid.generation;
  grid.loading = fetchPage(generation).finally(() => {
    if (generation !== grid.generation) return;
    grid.loading = null;
    // The observer only reports changes: if the end is still in view, ask again.
    endObserver.unobserve(byId("grid-end"));
    endObserver.observe(byId("grid-end"));
  });
  return grid.loading;
}

async function fetchPage(generation) {
  byId("grid-status").textContent = "Loading...";
  try {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...grid.filters });
    if (grid.cursor) query.set("cursor", grid.cursor);
    const page = await (await callApi(`/images?${query}`)).json();
    if (generation !== grid.generation) return;
    page.images.forEach(addCard);
    grid.cursor = page.next_cursor;
    grid.exhausted = !page.next_cursor;
    // A page may come back empty yet not be the end (the server reads a bounded number of
    // entries per request): go on at once, as no scroll will ask for it.
    if (!page.images.length && !grid.exhausted) return fetchPage(generation);
    updateGridStatus();
    updatePosition();
  } catch (error) {
    if (generation !== grid.generation) return;
    grid.exhausted = true; // do not retry in a loop; a new filter or sign-in starts over
    byId("grid-status").textContent = "Could not load the images.";
    showError(error);
  }
}

function updateGridStatus() {
  const count = grid.cards.size;
  const more = grid.exhausted ? "" : ", scroll for more";
  byId("grid-status").textContent =
    count === 0 && grid.exhausted ? "No images." : `${count} image${count === 1 ? "" : "s"}${more}`;
}

const endObserver = new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting)) loadNextPage();
});

function ownerText(image) {
  return image.user_id === session.user ? `yours, ${image.visibility}` : `by ${image.user_id}`;
}

function addCard(image) {
  if (grid.cards.has(image.image_id)) return;
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.imageId = image.image_id;
  const open = document.createElement("button");
  open.type = "button";
  // The frame takes the image's shape from the list, so the grid does not move as bytes come.
  const frame = document.createElement("span");
  frame.className = "frame";
  const blur = document.createElement("canvas");
  blur.className = "blur";
  blur.hidden = true;
  blur.setAttribute("aria-hidden", "true");
  const thumbnail = document.createElement("img");
  thumbnail.alt = image.title || image.filename;
  thumbnail.hidden = true;
  const placeholder = document.createElement("span");
  placeholder.className = "placeholder";
  placeholder.textContent = "Thumbnail pending";
  frame.append(blur, thumbnail, placeholder);
  const caption = document.createElement("span");
  caption.className = "caption";
  const owner = document.createElement("span");
  owner.className = "owner";
  open.append(frame, caption, owner);
  open.addEventListener("click", () => showImage(image.image_id));
  item.append(open);
  byId("grid").append(item);

  const card = { item, image, objectUrl: null };
  grid.cards.set(image.image_id, card);
  showCardText(card);
  showPlaceholder(frame, image);
  showThumbnail(card, 0);
}

// Width over height as the image is shown: the placeholder's is upright, where width and height
// are the stored file's.
function aspectRatio(image) {
  if (image.placeholder) return image.placeholder.aspect_ratio;
  return image.width && image.height ? image.width / image.height : 1;
}

function rendition(image, name) {
  return (image.renditions && image.renditions[name]) || null;
}

// Shapes ``frame`` as the image and paints what stands for it until its bytes come: its
// dominant colour, and its blurhash over that. Style goes through the CSSOM, which the page's
// CSP allows (it forbids style attributes and elements).
function showPlaceholder(frame, image) {
  frame.style.setProperty("--aspect-ratio", String(aspectRatio(image)));
  const { placeholder } = image;
  const blur = frame.querySelector(".blur");
  if (!placeholder) {
    frame.style.removeProperty("background-color");
    blur.hidden = true;
    return;
  }
  frame.style.backgroundColor = placeholder.dominant_color;
  const pending = frame.querySelector(".placeholder"); // a card's "Thumbnail pending"
  if (pending) pending.hidden = true;
  if (!blurhash.isBlurhashValid(placeholder.blurhash).result) {
    blur.hidden = true; // the colour alone, rather than nothing
    return;
  }
  const width = BLUR_WIDTH;
  const height = Math.max(1, Math.round(BLUR_WIDTH / placeholder.aspect_ratio));
  blur.width = width;
  blur.height = height;
  const context = blur.getContext("2d");
  const pixels = new ImageData(blurhash.decode(placeholder.blurhash, width, height), width, height);
  context.putImageData(pixels, 0, 0);
  blur.hidden = false;
}

function fetchRendition(rendition, options = {}) {
  return callApi(rendition.url, { ...options, headers: { Accept: RENDITION_ACCEPT } }).then(
    (response) => response.blob(),
  );
}

function showCardText(card) {
  const { image } = card;
  card.item.querySelector(".caption").textContent = image.title || image.filename;
  card.item.querySelector(".owner").textContent = ownerText(image);
  card.item.querySelector("img").alt = image.title || image.filename;
}

async function showThumbnail(card, attempt) {
  const { image_id: imageId } = card.image;
  const stillShown = () => grid.cards.get(imageId) === card;
  try {
    if (card.image.thumbnail_status === "pending") {
      if (attempt >= THUMBNAIL_POLL_ATTEMPTS) return;
      await new Promise((resolve) => setTimeout(resolve, THUMBNAIL_POLL_MS));
      if (!stillShown()) return;
      card.image = await (await callApi(`/images/${imageId}`)).json();
      if (!stillShown()) return;
      showPlaceholder(card.item.querySelector(".frame"), card.image);
      showThumbnail(card, attempt + 1);
      return;
    }
    const placeholder = card.item.querySelector(".placeholder");
    if (card.image.thumbnail_status !== "ready") {
      placeholder.textContent = "No thumbnail";
      return;
    }
    // An image made before renditions existed has only the older thumbnail.
    const small = rendition(card.image, "thumbnail");
    const blob = small
      ? await fetchRendition(small)
      : await (await callApi(`/images/${imageId}/thumbnail`)).blob();
    if (!stillShown()) return;
    card.objectUrl = URL.createObjectURL(blob);
    const thumbnail = card.item.querySelector("img");
    thumbnail.src = card.objectUrl;
    // Decoded first, so that it fades in whole over the placeholder rather than line by line.
    await thumbnail.decode().catch(() => {});
    if (!stillShown()) return;
    thumbnail.classList.add("fade-in");
    thumbnail.hidden = false;
    placeholder.hidden = true;
  } catch (error) {
    if (stillShown()) showError(error);
  }
}

function removeCard(imageId) {
  const card = grid.cards.get(imageId);
  if (!card) return;
  if (card.objectUrl) URL.revokeObjectURL(card.objectUrl);
  card.item.remove();
  grid.cards.delete(imageId);
}

function removeAllCards() {
  for (const imageId of Array.from(grid.cards.keys())) removeCard(imageId);
}

function splitTags(text) {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
}

function applyFilters(event) {
  event.preventDefault();
  const order = byId("filter-order").value;
  const filters = {
    user_id: byId("filter-mine").checked && session.user ? session.user : "",
    title: byId("filter-title").value.trim(),
    content_type: byId("filter-type").value,
    tags: splitTags(byId("filter-tag").value).join(","),
    start_date: byId("filter-start").value,
    end_date: byId("filter-end").value,
    order: order === "desc" ? "" : order,
  };
  grid.filters = Object.fromEntries(Object.entries(filters).filter(([, value]) => value));
  clearError();
  resetGrid();
}

function clearFilters() {
  byId("filter-form").reset();
  grid.filters = {};
  clearError();
  resetGrid();
}

// --- the viewer --------------------------------------------------------------------------------

function formatBytes(size) {
  if (size < 1024) return `${size} bytes`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB (${size} bytes)`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB (${size} bytes)`;
}

function imageDetails(image) {
  const metadata = document.createElement("pre");
  metadata.textContent = JSON.stringify(image.metadata, null, 2);
  return [
    ["Title", image.title || "(none)"],
    ["Description", image.description || "(none)"],
    ["Tags", image.tags.length ? image.tags.join(", ") : "(none)"],
    ["Metadata", metadata],
    ["File", `${image.filename} (${image.content_type})`],
    ["Size", formatBytes(image.size)],
    ["Dimensions", `${image.width} × ${image.height}`],
    ["Created", new Date(image.created_at).toLocaleString()],
    ["Updated", new Date(image.updated_at).toLocaleString()],
    ["Visibility", image.visibility],
    ["Owner", image.user_id],
    // Only the owner is told: to anyone else the server has already left the location out.
    ...(isMine(image)
      ? [["Location", image.share_location ? "shared" : "hidden from everyone but you"]]
      : []),
  ];
}

function isMine(image) {
  return Boolean(session.user) && image.user_id === session.user;
}

function showViewError(text, offerReload = false) {
  byId("view-error-text").textContent = text;
  byId("view-reload").hidden = !offerReload;
  byId("view-error").hidden = false;
}

function clearViewError() {
  byId("view-error").hidden = true;
  byId("view-error-text").textContent = "";
  byId("view-reload").hidden = true;
}

function renderViewer(image) {
  byId("view-title").textContent = image.title || image.filename;
  const details = byId("view-details");
  details.replaceChildren();
  for (const [term, value] of imageDetails(image)) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.append(value);
    details.append(dt, dd);
  }
  // Offered to the owner only; the server refuses everyone else regardless.
  byId("view-edit").hidden = !isMine(image);
  byId("view-delete").hidden = !isMine(image);
  byId("view-image").alt = image.title || image.filename;
}

function updatePosition() {
  if (!viewer.imageId) return;
  const ids = Array.from(grid.cards.keys());
  const index = ids.indexOf(viewer.imageId);
  const more = grid.exhausted ? "" : "+";
  byId("view-position").textContent = index === -1 ? "" : `${index + 1} of ${ids.length}${more}`;
  byId("view-previous").disabled = index <= 0;
  byId("view-next").disabled = index === -1 || (index === ids.length - 1 && grid.exhausted);
}

function forgetShown() {
  if (viewer.fetches) viewer.fetches.abort();
  if (viewer.originalUrl) URL.revokeObjectURL(viewer.originalUrl);
  if (viewer.previewUrl) URL.revokeObjectURL(viewer.previewUrl);
  viewer.fetches = null;
  viewer.original = null;
  viewer.originalUrl = null;
  viewer.previewUrl = null;
}

// The original's bytes as a blob: URL (fetching them needs the token, so an <img> cannot); null
// if another image is shown by the time they arrive.
function fetchOriginal(imageId, generation, signal) {
  return callApi(`/images/${imageId}/download`, { signal })
    .then((response) => response.blob())
    .then((blob) => {
      if (generation !== viewer.generation) return null;
      viewer.originalUrl = URL.createObjectURL(blob);
      return viewer.originalUrl;
    });
}

// The original's bytes, fetched once for the image shown: to show where it has no preview, or
// to download.
function original() {
  if (!viewer.original) {
    viewer.original = fetchOriginal(viewer.imageId, viewer.generation, viewer.fetches.signal);
  }
  return viewer.original;
}

// What the viewer shows as a blob: URL: the preview rendition where the image has one (a screen's
// worth of pixels, a fraction of the original's bytes), else the original.
function fetchShown(image, generation, signal) {
  const preview = rendition(image, "preview");
  if (!preview) return original();
  return fetchRendition(preview, { signal }).then((blob) => {
    if (generation !== viewer.generation) return null;
    viewer.previewUrl = URL.createObjectURL(blob);
    return viewer.previewUrl;
  });
}

// Shows the image at once with what the grid has (its metadata, placeholder and thumbnail),
// then its current metadata and, over the thumbnail, its preview (or the original's bytes where
// it has none). ``edit`` opens the edit form on the current metadata, for the owner.
async function showImage(imageId, { edit = false } = {}) {
  const generation = ++viewer.generation;
  forgetShown();
  viewer.imageId = imageId;
  viewer.etag = null;
  clearViewError();
  closeConfirmation();
  byId("edit-form").hidden = true;
  byId("view-details").hidden = false;
  byId("view-status").textContent = "";

  const card = grid.cards.get(imageId);
  const picture = byId("view-image");
  picture.dataset.full = "false";
  delete picture.dataset.shows;
  if (card && card.objectUrl) picture.src = card.objectUrl;
  else picture.removeAttribute("src");
  byId("view-image-status").textContent = "Loading the full-size image...";
  if (card) {
    viewer.image = card.image;
    renderViewer(card.image);
  }
  // Until the metadata says more, an image the grid does not hold is drawn as a square.
  showPlaceholder(byId("view-frame"), card ? card.image : {});
  const painted = Boolean(card && card.image.placeholder);
  updatePosition();
  const dialog = byId("image-view");
  if (!dialog.open) dialog.showModal();

  viewer.fetches = new AbortController();
  const { signal } = viewer.fetches;
  const metadata = callApi(`/images/${imageId}`, { signal });
  // Started with the metadata where the grid's copy names a preview: a rendition's URL names the
  // same bytes for as long as the image lives. Else the metadata says whether one is ready now.
  let shown =
    card && rendition(card.image, "preview") ? fetchShown(card.image, generation, signal) : null;
  if (shown) shown.catch(() => {}); // reported below, once, when awaited
  try {
    const response = await metadata;
    const image = await response.json();
    if (generation !== viewer.generation) return;
    viewer.image = image;
    viewer.etag = response.headers.get("ETag");
    renderViewer(image);
    if (card) {
      card.image = image;
      showCardText(card);
    }
    if (!card || (!painted && image.placeholder)) {
      showPlaceholder(byId("view-frame"), image);
    }
    if (edit && isMine(image)) startEditing();
    if (!shown) shown = fetchShown(image, generation, signal);
    const url = await shown;
    if (generation !== viewer.generation) return;
    picture.src = url;
    await picture.decode();
    if (generation !== viewer.generation) return;
    picture.dataset.full = "true";
    const isPreview = url === viewer.previewUrl;
    picture.dataset.shows = isPreview ? "preview" : "original";
    const size = `${picture.naturalWidth} × ${picture.naturalHeight}`;
    const originalSize = `${image.width} × ${image.height}`;
    byId("view-image-status").textContent =
      isPreview && size !== originalSize
        ? `Preview: ${size} (Download saves the original, ${originalSize})`
        : `Full size: ${size}`;
  } catch (error) {
    if (generation !== viewer.generation) return;
    byId("view-image-status").textContent = "The full-size image could not be shown.";
    showError(error);
  }
}

async function step(delta) {
  const from = viewer.imageId;
  if (!from || !byId("image-view").open) return;
  let ids = Array.from(grid.cards.keys());
  if (ids.indexOf(from) + delta >= ids.length && !grid.exhausted) {
    byId("view-status").textContent = "Loading more images...";
    await loadNextPage();
    if (viewer.imageId !== from) return;
    byId("view-status").textContent = "";
    ids = Array.from(grid.cards.keys());
  }
  const index = ids.indexOf(from);
  const target = index + delta;
  if (index === -1 || target < 0 || target >= ids.length) return;
  showImage(ids[target]);
  // Keep the grid where the viewer is, so that closing it lands on the image last seen.
  grid.cards.get(ids[target]).item.scrollIntoView({ block: "nearest" });
}

function onKey(event) {
  if (!byId("image-view").open || event.altKey || event.ctrlKey || event.metaKey) return;
  // Arrows move the caret in a text field, and choose in a select: leave them alone there.
  if (event.target instanceof Element && event.target.closest("input, textarea, select")) return;
  if (event.key === "ArrowLeft") {
    event.preventDefault();
    step(-1);
  } else if (event.key === "ArrowRight") {
    event.preventDefault();
    step(1);
  }
}

// The original's bytes, saved under the image's file name (the viewer may show a preview).
async function downloadViewed() {
  const { generation } = viewer;
  if (!viewer.imageId || !viewer.image) return;
  try {
    const url = await original();
    if (generation !== viewer.generation || !url) return;
    // Inside the dialog: the page behind a modal dialog is inert.
    const link = document.createElement("a");
    link.href = url;
    link.download = viewer.image.filename;
    link.hidden = true;
    byId("image-view").append(link);
    link.click();
    link.remove();
  } catch (error) {
    if (generation === viewer.generation) showError(error); // not an abort by another image
  }
}

// --- deleting ----------------------------------------------------------------------------------

function askToDelete() {
  const { image } = viewer;
  if (!image) return;
  byId("view-confirm-text").textContent =
    `Delete “${image.title || image.filename}”? This cannot be undone.`;
  byId("view-confirm").hidden = false;
  byId("view-delete").disabled = true;
  byId("view-confirm-cancel").focus();
}

function closeConfirmation() {
  byId("view-confirm").hidden = true;
  byId("view-delete").disabled = false;
}

async function deleteViewedImage() {
  const imageId = viewer.imageId;
  byId("view-confirm-delete").disabled = true;
  try {
    await callApi(`/images/${imageId}`, { method: "DELETE" });
    closeConfirmation();
    byId("image-view").close();
    removeCard(imageId);
    updateGridStatus();
  } catch (error) {
    showError(error);
  } finally {
    byId("view-confirm-delete").disabled = false;
  }
}

// --- editing -----------------------------------------------------------------------------------

function startEditing() {
  const { image } = viewer;
  if (!image) return;
  closeConfirmation();
  byId("edit-title").value = image.title;
  byId("edit-description").value = image.description;
  byId("edit-tags").value = image.tags.join(", ");
  byId("edit-visibility").value = image.visibility;
  byId("edit-share-location").checked = Boolean(image.share_location);
  byId("edit-form").hidden = false;
  byId("view-details").hidden = true;
  byId("view-status").textContent = "";
  byId("edit-title").focus();
}

function stopEditing() {
  byId("edit-form").hidden = true;
  byId("view-details").hidden = false;
}

function editedFields(image) {
  const edited = {
    title: byId("edit-title").value.trim(),
    description: byId("edit-description").value.trim(),
    tags: splitTags(byId("edit-tags").value),
    visibility: byId("edit-visibility").value,
    share_location: byId("edit-share-location").checked,
  };
  const current = { ...image, share_location: Boolean(image.share_location) };
  const same = (name) => JSON.stringify(edited[name]) === JSON.stringify(current[name]);
  return Object.fromEntries(Object.entries(edited).filter(([name]) => !same(name)));
}

async function saveEdit(event) {
  event.preventDefault();
  const { image, imageId } = viewer;
  if (!image) return;
  const changes = editedFields(image);
  if (Object.keys(changes).length === 0) {
    stopEditing();
    return;
  }
  const generation = viewer.generation;
  const save = byId("edit-form").querySelector("button[type=submit]");
  save.disabled = true;
  clearViewError();
  try {
    const response = await callApi(`/images/${imageId}`, {
      method: "PATCH",
      headers: {
        "Content-Type": "application/json",
        // The version shown: the server refuses the change if the image has moved on since.
        "If-Match": viewer.etag || String(image.version),
      },
      body: JSON.stringify(changes),
    });
    const saved = await response.json();
    if (generation !== viewer.generation) return;
    viewer.image = saved;
    viewer.etag = response.headers.get("ETag");
    renderViewer(saved);
    stopEditing();
    byId("view-status").textContent = "Saved.";
    const card = grid.cards.get(imageId);
    if (card) {
      card.image = saved;
      showCardText(card);
    }
  } catch (error) {
    if (generation !== viewer.generation) return;
    if (error instanceof ApiError && error.status === 412) {
      showViewError(
        "Not saved: someone changed this image after you opened it. " +
          "Reload to see the current version, then make your change again.",
        true,
      );
    } else {
      showError(error);
    }
  } finally {
    save.disabled = false;
  }
}

function reloadViewed() {
  showImage(viewer.imageId, { edit: !byId("edit-form").hidden });
}

function closeView() {
  byId("image-view").close();
}

function viewClosed() {
  viewer.generation += 1;
  viewer.imageId = null;
  viewer.image = null;
  viewer.etag = null;
  forgetShown();
  closeConfirmation();
  stopEditing();
  clearViewError();
  byId("view-image").removeAttribute("src");
  byId("view-blur").hidden = true;
}

// --- start -------------------------------------------------------------------------------------

function start() {
  byId("sign-in").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  byId("filter-form").addEventListener("submit", applyFilters);
  byId("filter-clear").addEventListener("click", clearFilters);
  byId("view-previous").addEventListener("click", () => step(-1));
  byId("view-next").addEventListener("click", () => step(1));
  byId("view-download").addEventListener("click", downloadViewed);
  byId("view-edit").addEventListener("click", startEditing);
  byId("view-delete").addEventListener("click", askToDelete);
  byId("view-confirm-delete").addEventListener("click", deleteViewedImage);
  byId("view-confirm-cancel").addEventListener("click", closeConfirmation);
  byId("edit-form").addEventListener("submit", saveEdit);
  byId("edit-cancel").addEventListener("click", stopEditing);
  byId("view-reload").addEventListener("click", reloadViewed);
  byId("view-close").addEventListener("click", closeView);
  byId("image-view").addEventListener("close", viewClosed);
  document.addEventListener("keydown", onKey);
  byId("upload-form").addEventListener("submit", (event) => event.preventDefault());
  watchDropZone();
  endObserver.observe(byId("grid-end"));
  const signedIn = Boolean(savedToken());
  showSignedIn(signedIn);
  if (signedIn) resetGrid();
}

start();
