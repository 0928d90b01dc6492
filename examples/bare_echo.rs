//! A bare teloxide echo bot (no storage, no content): the floor `cargo bench --bench telegram_load` compares `serve` with (`LOAD_BOT=bare`).
//!
//! Build with `cargo build --release --example bare_echo`; it reads `TELOXIDE_TOKEN` and
//! `TELOXIDE_API_URL` like `serve`, polls with teloxide's own dispatcher (updates of one chat in
//! order, chats in parallel) and answers every text message with the same text. It keeps nothing:
//! an update is acknowledged before it is handled, which is exactly the guarantee `serve` adds.

use teloxide::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("TELOXIDE_TOKEN")?;
    let mut bot = Bot::new(token);
    if let Ok(url) = std::env::var("TELOXIDE_API_URL") {
        bot = bot.set_api_url(url.parse()?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let handler = Update::filter_message().endpoint(|bot: Bot, message: Message| async move {
            if let Some(text) = message.text() {
                bot.send_message(message.chat.id, text).await?;
            }
            respond(())
        });
        Dispatcher::builder(bot, handler).build().dispatch().await;
    });
    Ok(())
}
