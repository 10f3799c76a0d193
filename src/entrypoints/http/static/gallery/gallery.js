// The gallery page: a small client of the imagecore API, with no framework and no build step.
// It runs under a strict Content-Security-Policy: no inline script, no eval, no inline style.
"use strict";

const TOKEN_KEY = "imagecore.token";
const PAGE_SIZE = 24;
const THUMBNAIL_POLL_MS = 1000;
const THUMBNAIL_POLL_ATTEMPTS = 60;

const byId = (id) => document.getElementById(id);

const grid = {
  filters: {},
  cursor: null,
  exhausted: false,
  loading: false,
  // Bumped on every reset, so that a page that arrives for an older grid is dropped.
  generation: 0,
  cards: new Map(), // image_id -> {item, image, objectUrl}
};

// --- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const known = body && typeof body === "object" && body.error;
    super(known ? `${body.error}: ${body.message}` : `the server answered ${status}`);
    this.status = status;
    this.requestId = known ? body.request_id : null;
  }
}

function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function callApi(path, options = {}) {
  const headers = new Headers(options.headers);
  headers.set("Authorization", `Bearer ${savedToken()}`);
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body);
  }
  return response;
}

function showError(error) {
  const message = byId("error");
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.requestId) text += ` (request ${error.requestId})`;
  if (error instanceof ApiError && error.status === 401) text += " - sign in again with a valid token";
  message.textContent = text;
  message.hidden = false;
}

function clearError() {
  byId("error").hidden = true;
  byId("error").textContent = "";
}

// --- signing in --------------------------------------------------------------------------------

function showSignedIn(signedIn) {
  byId("sign-in").hidden = signedIn;
  byId("signed-in").hidden = !signedIn;
  byId("gallery").hidden = !signedIn;
}

function signIn(event) {
  event.preventDefault();
  const input = byId("token-input");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  clearError();
  showSignedIn(true);
  resetGrid();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  grid.generation += 1;
  removeAllCards();
  byId("upload-list").replaceChildren();
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

// XMLHttpRequest rather than fetch: only it reports the progress of a request's body.
function uploadFile(file, fields) {
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
  grid.loading = false;
  removeAllCards();
  loadNextPage();
}

async function loadNextPage() {
  if (grid.loading || grid.exhausted || !savedToken()) return;
  grid.loading = true;
  const generation = grid.generation;
  byId("grid-status").textContent = "Loading...";
  try {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...grid.filters });
    if (grid.cursor) query.set("cursor", grid.cursor);
    const page = await (await callApi(`/images?${query}`)).json();
    if (generation !== grid.generation) return;
    page.images.forEach(addCard);
    grid.cursor = page.next_cursor;
    grid.exhausted = !page.next_cursor;
    updateGridStatus();
  } catch (error) {
    if (generation !== grid.generation) return;
    grid.exhausted = true; // do not retry in a loop; a new filter or sign-in starts over
    byId("grid-status").textContent = "Could not load the images.";
    showError(error);
  } finally {
    if (generation === grid.generation) {
      grid.loading = false;
      // The observer only reports changes: if the end is still in view, ask again.
      endObserver.unobserve(byId("grid-end"));
      endObserver.observe(byId("grid-end"));
    }
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

function addCard(image) {
  if (grid.cards.has(image.image_id)) return;
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.imageId = image.image_id;
  const open = document.createElement("button");
  open.type = "button";
  const thumbnail = document.createElement("img");
  thumbnail.alt = image.title || image.filename;
  thumbnail.hidden = true;
  const placeholder = document.createElement("span");
  placeholder.className = "placeholder";
  placeholder.textContent = "Thumbnail pending";
  const caption = document.createElement("span");
  caption.className = "caption";
  caption.textContent = image.title || image.filename;
  open.append(thumbnail, placeholder, caption);
  open.addEventListener("click", () => openImage(image.image_id));
  item.append(open);
  byId("grid").append(item);

  const card = { item, image, objectUrl: null };
  grid.cards.set(image.image_id, card);
  showThumbnail(card, 0);
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
      if (stillShown()) showThumbnail(card, attempt + 1);
      return;
    }
    const placeholder = card.item.querySelector(".placeholder");
    if (card.image.thumbnail_status !== "ready") {
      placeholder.textContent = "No thumbnail";
      return;
    }
    const blob = await (await callApi(`/images/${imageId}/thumbnail`)).blob();
    if (!stillShown()) return;
    card.objectUrl = URL.createObjectURL(blob);
    const thumbnail = card.item.querySelector("img");
    thumbnail.src = card.objectUrl;
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

function applyFilters(event) {
  event.preventDefault();
  const filters = {
    tags: byId("filter-tag").value.trim(),
    start_date: byId("filter-start").value,
    end_date: byId("filter-end").value,
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

// --- one image ---------------------------------------------------------------------------------

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
  ];
}

let viewedImageId = null;

async function openImage(imageId) {
  try {
    const image = await (await callApi(`/images/${imageId}`)).json();
    viewedImageId = imageId;
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
    const preview = byId("view-preview");
    const card = grid.cards.get(imageId);
    preview.alt = image.title || image.filename;
    preview.hidden = !(card && card.objectUrl);
    if (card && card.objectUrl) preview.src = card.objectUrl;
    else preview.removeAttribute("src");
    byId("image-view").showModal();
  } catch (error) {
    showError(error);
  }
}

async function deleteViewedImage() {
  const imageId = viewedImageId;
  try {
    await callApi(`/images/${imageId}`, { method: "DELETE" });
    byId("image-view").close();
    removeCard(imageId);
    updateGridStatus();
  } catch (error) {
    showError(error);
  }
}

function closeView() {
  byId("image-view").close();
}

// --- start -------------------------------------------------------------------------------------

function start() {
  byId("sign-in").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", signOut);
  byId("filter-form").addEventListener("submit", applyFilters);
  byId("filter-clear").addEventListener("click", clearFilters);
  byId("view-delete").addEventListener("click", deleteViewedImage);
  byId("view-close").addEventListener("click", closeView);
  byId("image-view").addEventListener("close", () => {
    viewedImageId = null;
    byId("view-preview").removeAttribute("src");
  });
  byId("upload-form").addEventListener("submit", (event) => event.preventDefault());
  watchDropZone();
  endObserver.observe(byId("grid-end"));
  const signedIn = Boolean(savedToken());
  showSignedIn(signedIn);
  if (signedIn) resetGrid();
}

start();
