// A grammY bot for Herald's tests: the same code a Telegram bot would be,
// with only the API root pointed at Herald. MODE=poll long-polls; MODE=webhook
// serves a webhook on a free port and registers it with setWebhook.
// It prints READY when it is listening, and one line per event the Go test
// waits for.
import { Bot, InlineKeyboard, webhookCallback } from "grammy";
import http from "node:http";

const { TOKEN, API_ROOT, MODE } = process.env;
const bot = new Bot(TOKEN, { client: { apiRoot: API_ROOT } });

bot.command("start", (ctx) =>
  ctx.reply(`Hi <b>${ctx.from.first_name}</b> from grammY`, {
    parse_mode: "HTML",
    reply_markup: new InlineKeyboard().text("Tap", "tap"),
  }),
);
bot.on("message:text", (ctx) => ctx.reply(`grammY ${MODE}: ${ctx.message.text}`));
bot.callbackQuery("tap", async (ctx) => {
  await ctx.answerCallbackQuery({ text: `tapped in ${MODE}` });
  console.log("ANSWERED");
});
bot.catch((err) => {
  console.log("ERROR", err.message);
});

if (MODE === "webhook") {
  const secret = "s3cret-token_1";
  const handle = webhookCallback(bot, "http", { secretToken: secret });
  const server = http.createServer(handle);
  server.listen(0, "127.0.0.1", async () => {
    const { port } = server.address();
    await bot.api.setWebhook(`http://127.0.0.1:${port}/hook`, { secret_token: secret });
    const info = await bot.api.getWebhookInfo();
    console.log("WEBHOOK", info.url);
    console.log("READY");
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
} else {
  process.on("SIGTERM", () => bot.stop().then(() => process.exit(0)));
  await bot.start({ onStart: () => console.log("READY") });
}
