// The sign-in page's demo-account chips: fill in the form, then submit it.
const form = document.getElementById("login-form");
for (const chip of document.querySelectorAll("[data-demo-user]")) {
  chip.addEventListener("click", () => {
    form.elements.username.value = chip.dataset.demoUser;
    form.elements.password.value = "beacon-demo";
    form.requestSubmit();
  });
}
